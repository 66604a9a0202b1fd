from django.core.management.base import BaseCommand, CommandError

from loyalty import errors
from loyalty.accounts import staff_create
from loyalty.models import Role

from ._base import team_by_slug


class Command(BaseCommand):
    help = "Create a staff user with a role in a team (they log in at /admin/login/)."

    def add_arguments(self, parser):
        parser.add_argument("--team", required=True, help="team slug")
        parser.add_argument("--email", required=True)
        parser.add_argument("--password", required=True)
        parser.add_argument("--role", required=True, choices=Role.values)

    def handle(self, *args, **o):
        team = team_by_slug(o["team"])
        try:
            user = staff_create(team=team, email=o["email"], password=o["password"], role=o["role"])
        except errors.LoyaltyError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(user.username)
