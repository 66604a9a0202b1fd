from django.core.management.base import BaseCommand, CommandError

from loyalty import errors, services

from ._base import team_by_slug


class Command(BaseCommand):
    help = "Enroll a member in a team and print the member id (mem_…)."

    def add_arguments(self, parser):
        parser.add_argument("--team", required=True, help="team slug")
        parser.add_argument("--email", required=True)
        parser.add_argument("--name", default="")
        parser.add_argument("--password", default="")

    def handle(self, *args, **o):
        team = team_by_slug(o["team"])
        try:
            member = services.member_enroll(
                team=team, email=o["email"], name=o["name"], password=o["password"]
            )
        except errors.LoyaltyError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(member.public_id)
