from django.core.management.base import BaseCommand, CommandError

from loyalty import errors
from loyalty.api_keys import PRESETS, api_key_create

from ._base import team_by_slug


class Command(BaseCommand):
    help = "Create a v2 API key for a team and print it (only this once)."

    def add_arguments(self, parser):
        parser.add_argument("--team", required=True, help="team slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--preset", required=True, choices=sorted(PRESETS))
        parser.add_argument("--rate-limit", type=int, default=600, help="requests per minute")

    def handle(self, *args, **o):
        team = team_by_slug(o["team"])
        try:
            _, plaintext = api_key_create(
                team=team, name=o["name"], preset=o["preset"], rate_limit=o["rate_limit"]
            )
        except errors.LoyaltyError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(plaintext)
