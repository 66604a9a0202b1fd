"""Claim verification tasks. Arguments are ids only — never an order number, a postal code or
anything a member typed."""

import logging

from celery import current_app, shared_task

from . import verify

log = logging.getLogger(__name__)


def _later(claim_id: int, seconds: float) -> None:
    # Eagerly run tasks (tests, no broker) would re-run at once; the periodic sweep picks the
    # claim up when its retry is due instead.
    if current_app.conf.task_always_eager:
        return
    verify_claim.apply_async((claim_id,), countdown=max(1, round(seconds)))


@shared_task(acks_late=True)
def verify_claim(claim_id: int) -> str | None:
    outcome = verify.verify(claim_id)
    if outcome.retry_in is not None:
        _later(claim_id, outcome.retry_in)
    return outcome.status


@shared_task
def retry_due_claims() -> int:
    """Periodic: nothing waiting is ever lost — due retries, and claims a dead worker left."""
    ids = verify.due_claims()
    for claim_id in ids:
        if current_app.conf.task_always_eager:
            verify_claim(claim_id)
        else:
            verify_claim.delay(claim_id)
    return len(ids)


@shared_task(acks_late=True)
def clawback_pass(team_id: int | None = None) -> int:
    """Periodic (beat): read every connected marketplace channel's changes since its watermark
    and claw back cancelled or refunded awards. Returns the reversals made."""
    from loyalty.models import Team

    from . import clawback

    team = Team.objects.get(pk=team_id) if team_id is not None else None
    reports = clawback.run_pass(team=team)
    for report in reports:
        if report.outcome != "idle":
            log.info("claw-back: %s", report)
    return sum(r.reversals for r in reports)
