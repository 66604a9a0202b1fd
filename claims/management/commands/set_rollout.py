"""manage.py set_rollout --team SLUG --channel ch_… --stage off|staff|on"""

from django.core.management.base import BaseCommand, CommandError

from channels_app.models import Channel
from claims.models import Stage
from claims.services import CLAIM_KINDS, rollout_set
from loyalty.models import Team


class Command(BaseCommand):
    help = "Open or close order claims for one team's marketplace channel (graylaunch)."

    def add_arguments(self, parser):
        parser.add_argument("--team", required=True, help="The team's slug")
        parser.add_argument("--channel", required=True, help="The channel's public id, ch_…")
        parser.add_argument("--stage", required=True, choices=[s.value for s in Stage])
        parser.add_argument("--window-days", type=int, default=None, help="Claim window")

    def handle(self, *args, **opts):
        team = Team.objects.filter(slug=opts["team"]).first()
        if team is None:
            raise CommandError(f"No team with slug {opts['team']!r}.")
        channel = Channel.objects.filter(team=team, public_id=opts["channel"]).first()
        if channel is None:
            raise CommandError(f"Team {team.slug} has no channel {opts['channel']!r}.")
        if channel.kind not in CLAIM_KINDS:
            raise CommandError("Order claims are for Amazon and TikTok Shop channels only.")
        rollout = rollout_set(
            channel=channel, stage=opts["stage"], claim_window_days=opts["window_days"]
        )
        self.stdout.write(f"{team.slug} · {channel.public_id} ({channel}): {rollout.stage}")
