"""Celery tasks for the outbox: fan-out, webhook attempts, retries, automation e-mails.

Arguments are ids (and an automation's kind) only — never a payload, an address or a secret.
"""

from celery import shared_task

from . import automations, dispatch


@shared_task
def dispatch_outbox() -> int:
    """Beat runs this every few seconds (EVENTS_DISPATCH_SECONDS)."""
    return dispatch.outbox_dispatch()


@shared_task(ignore_result=True)
def deliver(delivery_id: int) -> str:
    return dispatch.delivery_attempt(delivery_id=delivery_id)


@shared_task
def retry_due_deliveries() -> int:
    """Beat runs this often (EVENTS_RETRY_SECONDS): each due retry becomes one deliver task,
    whose claim makes sure a delivery enqueued twice is still attempted once."""
    ids = dispatch.due_delivery_ids()
    for pk in ids:
        deliver.delay(pk)
    return len(ids)


# SMTP trouble (SMTPException is an OSError) is retried by Celery at a later time, not by a
# sleeping worker; the EmailSent row of a failed send was rolled back, so a retry can send.
@shared_task(autoretry_for=(OSError,), retry_backoff=60, retry_backoff_max=3600, max_retries=5)
def send_automation_email(kind: str, event_id: int) -> bool:
    return automations.automation_send(kind=kind, event_id=event_id)
