import logging

from celery import shared_task
from django.db import DatabaseError
from django.utils import timezone

from . import errors, services
from .models import HeldAward, HoldReason, HoldStatus

log = logging.getLogger(__name__)


@shared_task
def retry_cap_holds() -> int:
    """Grant awards that were held only because the daily cap could not be checked."""
    granted = 0
    holds = HeldAward.objects.filter(reason=HoldReason.CAP_UNAVAILABLE, status=HoldStatus.HELD)
    for hold in holds.order_by("created_at")[:500]:
        try:
            if services.hold_retry_cap(hold=hold) is not None:
                granted += 1
        except DatabaseError:
            log.warning("cap still unavailable for hold %s; will retry", hold.public_id)
            break
    return granted


@shared_task
def vest_due_awards() -> int:
    """Turn pending purchase points whose return window has closed into spendable points."""
    vested = 0
    due = HeldAward.objects.filter(
        reason=HoldReason.VESTING, status=HoldStatus.HELD, release_at__lte=timezone.now()
    ).order_by("release_at")
    for hold in due[:1000]:
        try:
            services.hold_vest(hold=hold)
            vested += 1
        except errors.IllegalTransition:
            pass  # refunded or vested by a concurrent run meanwhile
    return vested
