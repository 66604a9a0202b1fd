"""Verify one claim: fetch the order through the team's own channel, keep its non-PII
projection, preview the points and hand it to a reviewer. Verification itself never awards;
once the claim waits for review (committed), the channel's auto-approval policy — when a team
turned one on — may approve it through the reviewers' own path (``claims.policy``).

The caller (the Celery task) re-schedules when this returns a delay."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from channels_app import services as channel_services
from channels_app.connectors import connector_for
from channels_app.connectors.base import (
    BuyerHint,
    ConnectorError,
    OrderNotFound,
    OrderProjection,
)
from loyalty.selectors import purchase_points_preview

from . import pacing, policy, services
from .models import Claim, ClaimStatus, Rollout, VerifiedOrder

log = logging.getLogger(__name__)
S = ClaimStatus

# The platform's words for an order that has left the warehouse.
SHIPPED = {
    "amazon": {"SHIPPED", "PARTIALLY_SHIPPED", "DELIVERED"},
    "tiktok": {"IN_TRANSIT", "DELIVERED", "COMPLETED"},
}
MAX_BACKOFF = 15 * 60
PERMANENT_BACKOFF = 60 * 60  # revoked credentials: a person must fix the channel first


@dataclass(frozen=True)
class Outcome:
    status: str | None  # the claim's status afterwards; None when there was nothing to do
    retry_in: float | None = None  # seconds until the next attempt, when one is due


def backoff(attempts: int, retry_after: float | None = None) -> float:
    base = min(MAX_BACKOFF, 5 * 2 ** max(0, attempts - 1))
    return max(base, float(retry_after or 0))


def verify(claim_id: int) -> Outcome:
    state = Claim.objects.filter(pk=claim_id).values("status", "channel_id").first()
    if state is None or state["status"] not in (S.SUBMITTED, S.RETRYING):
        return Outcome(None)
    # Pace before claiming the work: without a token the claim stays as it is, to be re-tried.
    from channels_app.models import Channel, Status

    channel = Channel.objects.get(pk=state["channel_id"])
    if channel.status != Status.CONNECTED:
        # Credentials known to be refused (or removed): wait for staff to re-verify the
        # channel (the console says so) instead of presenting them to the platform again.
        return Outcome(None, retry_in=float(PERMANENT_BACKOFF))
    wait = pacing.take(channel)
    if wait > 0:
        return Outcome(None, retry_in=max(1.0, wait))
    claim = services.claim_start_verifying(claim_id=claim_id)
    if claim is None:
        return Outcome(None)  # another worker took it
    try:
        hint = BuyerHint(postal_code=services.postal_code_of(claim))
        projection = connector_for(claim.channel).fetch_order(claim.order_number, match=hint)
        del hint
    except OrderNotFound as exc:
        log.info("claim %s: order not found", claim.public_id)
        return _finish(claim, S.NOT_FOUND, exc.message)
    except ConnectorError as exc:
        return _retry(claim, exc)
    except Exception:  # noqa: BLE001 - whatever broke, the claim must not stay stuck
        log.exception("claim %s: verification failed unexpectedly", claim.public_id)
        delay = backoff(claim.attempts)
        services.claim_transition(
            claim=claim,
            to=S.RETRYING,
            reason="unexpected error; will retry",
            next_attempt_at=timezone.now() + timedelta(seconds=delay),
        )
        return Outcome(S.RETRYING, retry_in=delay)
    return _verified(claim, projection)


def _retry(claim: Claim, exc: ConnectorError) -> Outcome:
    kind = type(exc).__name__
    if exc.permanent:
        log.warning("claim %s: channel refused (%s); waiting", claim.public_id, kind)
        channel_services.channel_mark_failed(
            channel=claim.channel, message=exc.message, permanent=True
        )
        delay = float(PERMANENT_BACKOFF)
        reason = "the shop's connection needs attention; will retry"
    else:
        log.info("claim %s: temporary fault (%s); will retry", claim.public_id, kind)
        delay = backoff(claim.attempts, exc.retry_after)
        reason = "the marketplace is busy; will retry"
    services.claim_transition(
        claim=claim,
        to=S.RETRYING,
        reason=reason,
        next_attempt_at=timezone.now() + timedelta(seconds=delay),
    )
    return Outcome(S.RETRYING, retry_in=delay)


def _finish(claim: Claim, status: str, reason: str, **fields) -> Outcome:
    services.claim_transition(
        claim=claim, to=status, reason=reason, sealed_postal_code="", **fields
    )
    return Outcome(status)


def _ineligible_reason(claim: Claim, order: OrderProjection) -> str:
    if order.cancelled:
        return "order was cancelled"
    if order.status not in SHIPPED.get(claim.channel.kind, set()):
        return "order has not shipped yet — claim it once it is on its way"
    rollout = Rollout.objects.filter(team_id=claim.team_id, channel_id=claim.channel_id).first()
    window = rollout.claim_window_days if rollout else 90
    if order.purchased_at and order.purchased_at < timezone.now() - timedelta(days=window):
        return f"order is older than {window} days"
    return ""


def _verified(claim: Claim, order: OrderProjection) -> Outcome:
    with transaction.atomic():
        verified, _ = VerifiedOrder.objects.update_or_create(
            channel=claim.channel,
            order_id=order.order_id,
            defaults={
                "team_id": claim.team_id,
                "marketplace": order.marketplace[:40],
                "status": order.status[:40],
                "purchased_at": order.purchased_at,
                "total": order.total,
                "currency": order.currency[:3],
                "item_count": order.item_count,
                "cancelled": order.cancelled,
                "delivered": order.delivered,
                "buyer_match": str(order.buyer_match),
            },
        )
        fields = {
            "verified_order": verified,
            "postal_match": str(order.buyer_match),
            "sealed_postal_code": "",
        }
        if (
            Claim.objects.filter(verified_order=verified, status__in=services.CLAIMED_STATUSES)
            .exclude(pk=claim.pk)
            .exists()
        ):
            services.claim_transition(
                claim=claim, to=S.REJECTED, reason="order was already claimed", **fields
            )
            return Outcome(S.REJECTED)
        reason = _ineligible_reason(claim, order)
        if reason:
            services.claim_transition(claim=claim, to=S.INELIGIBLE, reason=reason, **fields)
            return Outcome(S.INELIGIBLE)
        preview = purchase_points_preview(claim.member, order.total, order.currency)
        services.claim_transition(
            claim=claim,
            to=S.PENDING_REVIEW,
            reason=f"verified with {claim.channel.get_kind_display()}",
            points_preview=preview,
            **fields,
        )
    # After the commit above: a claim the policy does not approve (or cannot, for whatever
    # reason) stays pending_review, safely in the queue.
    try:
        judged = policy.apply_policy(claim)
    except Exception:  # noqa: BLE001 - the claim is already waiting for a person
        log.exception("claim %s: auto-approval policy failed; left for review", claim.public_id)
        return Outcome(S.PENDING_REVIEW)
    return Outcome(judged.status)


def due_claims(now=None) -> list[int]:
    """Claims whose retry is due, and claims stuck mid-verification (a worker died)."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=getattr(settings, "CLAIM_VERIFY_STALE_SECONDS", 600))
    retrying = Claim.objects.filter(status=S.RETRYING, next_attempt_at__lte=now)
    waiting = Claim.objects.filter(status=S.SUBMITTED, created_at__lte=now - timedelta(minutes=1))
    stuck = Claim.objects.filter(status=S.VERIFYING, updated_at__lte=stale)
    for claim in stuck:
        services.claim_transition(
            claim=claim,
            to=S.RETRYING,
            reason="verification was interrupted; will retry",
            next_attempt_at=now,
        )
    ids = set(retrying.values_list("pk", flat=True)) | set(waiting.values_list("pk", flat=True))
    ids |= {c.pk for c in stuck}
    return sorted(ids)
