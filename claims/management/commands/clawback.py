"""manage.py clawback [--team SLUG] — one claw-back pass now (the beat runs it periodically)."""

from django.core.management.base import BaseCommand, CommandError
from django.template.defaultfilters import pluralize

from claims import clawback
from loyalty.models import Team


class Command(BaseCommand):
    help = (
        "Read each connected Amazon / TikTok Shop channel's cancellations and refunds since its "
        "watermark and claw back what those orders earned (once each)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--team", help="Only this team (its slug)")
        parser.add_argument(
            "--max-seconds", type=float, default=None, help="Stop after this long (resumable)"
        )

    def handle(self, *args, **opts):
        team = None
        if opts["team"]:
            team = Team.objects.filter(slug=opts["team"]).first()
            if team is None:
                raise CommandError(f"No team with slug {opts['team']!r}.")
        reports = clawback.run_pass(team=team, max_seconds=opts["max_seconds"])
        if not reports:
            self.stdout.write("No connected Amazon or TikTok Shop channel.")
        for report in reports:
            self.stdout.write(str(report))
        made = sum(r.reversals for r in reports)
        self.stdout.write(f"{made} reversal{pluralize(made)} made.")
        if any(r.outcome == "failed" for r in reports):
            raise CommandError("Some feeds failed; they resume from where they stopped.")
