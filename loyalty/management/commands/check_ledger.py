from django.core.management.base import BaseCommand, CommandError

from loyalty.selectors import ledger_mismatches


class Command(BaseCommand):
    help = "Prove every member's balance equals the sum of their ledger entries."

    def add_arguments(self, parser):
        parser.add_argument("--team", default=None, help="only this team (slug)")

    def handle(self, *args, **o):
        bad = ledger_mismatches(team_slug=o["team"])
        for row in bad:
            self.stderr.write(
                f"{row['public_id']} ({row['team__slug']}): balance {row['balance']} "
                f"!= sum of entries {row['ledger_sum']}"
            )
        if bad:
            raise CommandError(f"{len(bad)} member(s) differ from their ledger.")
        self.stdout.write("ledger OK: every balance equals the sum of its entries")
