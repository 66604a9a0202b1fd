"""Open order claims on the demo team's Amazon and TikTok Shop channels (run by `make demo`)."""

from django.core.management.base import BaseCommand, CommandError

from channels_app.models import Channel
from claims.services import CLAIM_KINDS, rollout_set


class Command(BaseCommand):
    help = "Set the demo team's marketplace channels to rollout stage 'on'."

    def add_arguments(self, parser):
        parser.add_argument("--team", default="demo")

    def handle(self, *args, team: str, **options):
        channels = Channel.objects.filter(team__slug=team, kind__in=CLAIM_KINDS)
        if not channels:
            raise CommandError(f"Team '{team}' has no Amazon or TikTok Shop channel yet.")
        for channel in channels:
            rollout_set(channel=channel, stage="on")
            self.stdout.write(f"  {channel.name:<16} order claims on")
