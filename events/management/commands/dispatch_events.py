"""Dispatch the outbox and attempt due webhook retries by hand (or in a loop, for a demo
without Celery beat)."""

import time

from django.core.management.base import BaseCommand

from events import dispatch, tasks


class Command(BaseCommand):
    help = "Fan out undispatched outbox events and attempt due webhook deliveries."

    def add_arguments(self, parser):
        parser.add_argument(
            "--loop", type=float, metavar="SECONDS", help="repeat every SECONDS until stopped"
        )

    def handle(self, *args, loop=None, **options):
        while True:
            events = dispatch.outbox_dispatch()
            retried = tasks.retry_due_deliveries()
            self.stdout.write(f"dispatched {events} event(s); {retried} due retry(ies)")
            if not loop:
                return
            time.sleep(loop)
