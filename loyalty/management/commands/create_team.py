from django.core.management.base import BaseCommand, CommandError

from loyalty import errors
from loyalty.accounts import team_create
from loyalty.models import Plan


class Command(BaseCommand):
    help = "Create a team (a tenant) and print its slug."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--slug", required=True)
        parser.add_argument("--plan", default=Plan.STARTER, choices=Plan.values)
        parser.add_argument("--currency", default="USD")
        parser.add_argument("--rate", default="1", help="points per currency unit")
        parser.add_argument("--daily-cap", type=int, default=None)

    def handle(self, *args, **o):
        try:
            team = team_create(
                name=o["name"],
                slug=o["slug"],
                plan=o["plan"],
                currency=o["currency"],
                rate=o["rate"],
                daily_cap=o["daily_cap"],
            )
        except errors.LoyaltyError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(team.slug)
