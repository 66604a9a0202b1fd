"""The project's own periodic task: beat's heartbeat, read by /healthz (flash/health.py)."""

import time

from celery import shared_task
from django.core.cache import cache

from . import health


@shared_task
def beat_heartbeat() -> float:
    """Beat sends this every BEAT_HEARTBEAT_SECONDS to the sync queue; a sync worker stamps the
    time, so a fresh stamp proves beat, the broker and a worker are all running."""
    now = time.time()
    cache.set(health.HEARTBEAT_KEY, now, timeout=None)
    return now
