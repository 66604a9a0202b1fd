"""The outbox dispatcher and webhook deliveries.

``outbox_dispatch`` takes undispatched ``OutboxEvent`` rows in order, in batches, and fans each
out: one ``EventDelivery`` per active endpoint of the event's team that subscribes to its type,
plus the team's enabled e-mail automations; then it stamps ``dispatched_at``. The HTTP calls and
e-mails happen afterwards, in their own tasks, enqueued once the fan-out has committed.

``delivery_attempt`` makes one signed POST (see ``events.signing`` for the format). A 2xx
answer succeeds; anything else (other status, timeout, refused connection) is retried after
``BACKOFF`` — 30 s, 2 min, 10 min, 1 h, 6 h — by the periodic ``retry_due_deliveries`` task, and
after ``MAX_ATTEMPTS`` (6) attempts the delivery is marked failed. Workers never sleep: the
next attempt is a time in ``next_attempt_at``.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from datetime import UTC, timedelta

import requests
import urllib3
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from channels_app.vault import VaultError
from loyalty.models import OutboxEvent

from .catalog import AUTOMATIONS_FOR, subscribed
from .models import DeliveryState, EmailAutomation, EventDelivery, WebhookEndpoint
from .services import endpoint_secret
from .signing import signature

log = logging.getLogger(__name__)

BATCH_SIZE = 100
MAX_BATCHES = 50  # one run handles at most 5,000 events; the next beat tick takes the rest
BACKOFF = (
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(hours=1),
    timedelta(hours=6),
)
MAX_ATTEMPTS = len(BACKOFF) + 1
TIMEOUT_SECONDS = 5.0
# While an attempt is in flight its next_attempt_at is pushed this far ahead: the claim. If
# the worker dies mid-request the delivery falls due again once the lease runs out.
LEASE = timedelta(seconds=60)
USER_AGENT = "Flash-Webhooks/1.0"
RESPONSE_PEEK_BYTES = 512


# --- fan-out ----------------------------------------------------------------------------------


def outbox_dispatch(*, batch_size: int = BATCH_SIZE, max_batches: int = MAX_BATCHES) -> int:
    """Fan out undispatched events, oldest first. Returns how many were dispatched."""
    total = 0
    for _ in range(max_batches):
        done = _dispatch_batch(batch_size)
        total += done
        if done < batch_size:
            break
    return total


def _undispatched():
    events = OutboxEvent.objects.filter(dispatched_at__isnull=True).order_by("created_at", "pk")
    if connection.features.has_select_for_update_skip_locked:
        # Two dispatchers never take the same event: each locks its batch and skips rows
        # another has locked, instead of waiting for them and fanning them out a second time.
        return events.select_for_update(skip_locked=True)
    # SQLite has no row locks; its transactions here BEGIN IMMEDIATE (see settings), so a
    # second dispatcher waits for the first to commit and then no longer sees those rows.
    return events


def _dispatch_batch(batch_size: int) -> int:
    with transaction.atomic():
        events = list(_undispatched()[:batch_size])
        if not events:
            return 0
        team_ids = {e.team_id for e in events}
        endpoints = defaultdict(list)
        for ep in WebhookEndpoint.objects.filter(team_id__in=team_ids, active=True):
            endpoints[ep.team_id].append(ep)
        enabled = set(
            EmailAutomation.objects.filter(team_id__in=team_ids, enabled=True).values_list(
                "team_id", "kind"
            )
        )
        now = timezone.now()
        deliveries, emails = [], []
        for event in events:
            for ep in endpoints[event.team_id]:
                if subscribed(ep.event_types, event.event_type):
                    deliveries.append(EventDelivery(endpoint=ep, event=event, next_attempt_at=now))
            for kind in AUTOMATIONS_FOR.get(event.event_type, ()):
                if (event.team_id, kind) in enabled:
                    emails.append((str(kind), event.pk))
        event_ids = [e.pk for e in events]
        # The (endpoint, event) constraint makes a second fan-out of the same event (say its
        # dispatched_at was cleared by hand) a no-op rather than a second delivery.
        EventDelivery.objects.bulk_create(deliveries, ignore_conflicts=True)
        due = list(
            EventDelivery.objects.filter(
                event_id__in=event_ids, state=DeliveryState.PENDING, attempts=0
            ).values_list("pk", flat=True)
        )
        OutboxEvent.objects.filter(pk__in=event_ids).update(dispatched_at=now)
        transaction.on_commit(lambda: _enqueue(due, emails), robust=True)
    return len(events)


def _enqueue(delivery_ids: list[int], emails: list[tuple[str, int]]) -> None:
    from . import tasks

    # Ids only: the task loads what it needs (no member data or secret in the broker).
    for pk in delivery_ids:
        tasks.deliver.delay(pk)
    for kind, event_id in emails:
        tasks.send_automation_email.delay(kind, event_id)


# --- delivery ---------------------------------------------------------------------------------


def due_delivery_ids(*, limit: int = 500) -> list[int]:
    """Pending deliveries whose next attempt has come, to an endpoint that is not paused."""
    return list(
        EventDelivery.objects.filter(
            state=DeliveryState.PENDING,
            next_attempt_at__lte=timezone.now(),
            endpoint__active=True,
        )
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def payload_of(event: OutboxEvent) -> dict:
    created = event.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return {
        "id": event.pk,
        "type": event.event_type,
        "createdAt": created,
        "team": event.team.slug,
        "data": event.payload,
    }


def _claim(delivery_id: int):
    """Take one attempt of a delivery, or None when it is not ours to make now (done, not yet
    due, paused, or claimed by another worker). A conditional UPDATE decides the race."""
    if not EventDelivery.objects.filter(pk=delivery_id, endpoint__active=True).exists():
        return None  # deleted, or its endpoint is paused
    now = timezone.now()
    lease_until = now + LEASE
    # Conditions on the row itself only: a join here would make Django UPDATE through a
    # "pk IN (subquery)", which PostgreSQL re-checks after a concurrent claim commits only
    # against the pk, so two workers could both claim the same attempt.
    claimed = EventDelivery.objects.filter(
        pk=delivery_id, state=DeliveryState.PENDING, next_attempt_at__lte=now
    ).update(attempts=F("attempts") + 1, next_attempt_at=lease_until)
    if claimed != 1:
        return None
    delivery = (
        EventDelivery.objects.select_related("endpoint", "event", "event__team")
        .filter(pk=delivery_id)
        .first()
    )
    if delivery is None or delivery.next_attempt_at != lease_until:
        return None  # deleted, or replayed between our UPDATE and this read: not ours now
    return delivery


def delivery_attempt(*, delivery_id: int) -> str:
    """One attempt at one delivery; returns its state afterwards ("skipped" if none was made)."""
    delivery = _claim(delivery_id)
    if delivery is None:
        return "skipped"
    endpoint, event = delivery.endpoint, delivery.event
    status, error = _post(delivery, endpoint, event)
    now = timezone.now()
    outcome = {"last_status": status, "last_error": error[:300]}
    if status is not None and 200 <= status < 300:
        outcome |= {"state": DeliveryState.SUCCEEDED, "delivered_at": now, "next_attempt_at": None}
    elif delivery.attempts >= MAX_ATTEMPTS:
        outcome |= {"state": DeliveryState.FAILED, "next_attempt_at": None}
    else:
        outcome["next_attempt_at"] = now + BACKOFF[delivery.attempts - 1]
    # Written only if our claim is still the current one: a replay meanwhile reset the
    # delivery (new attempts count and due time), and its own attempt reports for itself.
    EventDelivery.objects.filter(
        pk=delivery.pk,
        state=DeliveryState.PENDING,
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at,
    ).update(**outcome)
    state = outcome.get("state", DeliveryState.PENDING)
    log.info(
        "webhook %s of event %s to %s: attempt %s, %s (%s)",
        delivery.pk,
        event.pk,
        endpoint.public_id,
        delivery.attempts,
        state,
        status if status is not None else error,
    )
    return str(state)


def _post(delivery: EventDelivery, endpoint: WebhookEndpoint, event: OutboxEvent):
    """(HTTP status or None, error text). Never raises for the receiver's faults."""
    body = json.dumps(payload_of(event), separators=(",", ":"), ensure_ascii=False).encode()
    timestamp = str(int(time.time()))
    try:
        sig = signature(endpoint_secret(endpoint=endpoint), timestamp, body)
    except VaultError:
        return None, "The signing secret cannot be opened (vault key missing); not sent."
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Flash-Event": event.event_type,
        "X-Flash-Delivery": str(delivery.pk),
        "X-Flash-Timestamp": timestamp,
        "X-Flash-Signature": sig,
    }
    try:
        # No redirects: a 3xx is the receiver's answer, and following it would send the
        # signed event somewhere the team never configured.
        # Streamed, and at most a few hundred bytes read: the answer's body is only a hint
        # for the delivery log, and a receiver must not be able to make us read megabytes.
        with requests.post(
            endpoint.url,
            data=body,
            headers=headers,
            timeout=TIMEOUT_SECONDS,
            allow_redirects=False,
            stream=True,
        ) as r:
            if 200 <= r.status_code < 300:
                return r.status_code, ""
            head = r.raw.read(RESPONSE_PEEK_BYTES, decode_content=True) or b""
    except requests.Timeout:
        return None, f"Timed out after {TIMEOUT_SECONDS:g} s."
    except requests.ConnectionError:
        return None, "Could not connect to the endpoint."
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        return None, f"Request failed ({type(exc).__name__})."
    snippet = " ".join(head.decode("utf-8", "replace").split())[:200]
    return r.status_code, f"HTTP {r.status_code}" + (f": {snippet}" if snippet else "")
