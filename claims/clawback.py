"""The refund claw-back job: orders cancelled or refunded after their claim was awarded give
back, proportionally, what they earned — once.

Each connected marketplace channel has two change feeds, read incrementally by time window:
``orders`` (Amazon searchOrders / TikTok order search by update time: cancellations) and
``refunds`` (Amazon financial events / TikTok returns: refunds, partial or whole; neither
platform shows refunds in its Orders API). Never one call per approved order: one call is one
page of whatever changed, so a pass costs pages of changes, not of orders.

Resuming: a ``ClawbackCursor`` per (channel, feed) is saved after every page. A run that stops
half-way — rate limit, platform fault, a killed worker — continues from the saved page next
time. Re-reading a page is harmless: every reversal has its own idempotency key
(``claw-back:<award key>`` for a cancellation, ``claw-back:<award key>:refund:<refund id>``
for each refund), so nothing is clawed back twice and nothing is skipped."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Min, Q, Sum
from django.utils import timezone

from channels_app import services as channel_services
from channels_app.connectors import connector_for
from channels_app.connectors.base import ConnectorError, PageExpired, RateLimited
from channels_app.models import Channel, Status
from loyalty import services as loyalty_services
from loyalty.models import EntryKind, HeldAward, HoldReason, LedgerEntry

from . import pacing
from .models import Claim, ClaimStatus, ClawbackCursor, ClawbackStream, VerifiedOrder
from .services import CLAIM_KINDS, award_key, claim_transition

log = logging.getLogger(__name__)
S = ClaimStatus

# (connector method, platform operation per kind) of each feed
FEEDS = {
    ClawbackStream.ORDERS: ("order_changes", {"amazon": "searchOrders", "tiktok": "searchOrders"}),
    ClawbackStream.REFUNDS: (
        "refund_changes",
        {"amazon": "listFinancialEvents", "tiktok": "searchReturns"},
    ),
}
LEASE = timedelta(minutes=10)


def _settle() -> timedelta:
    """Platforms publish a change a little late (Amazon: about two minutes, and it refuses a
    window that ends later than that), so a window ends this long before now."""
    return timedelta(seconds=getattr(settings, "CLAWBACK_SETTLE_SECONDS", 150))


def _overlap() -> timedelta:
    """Each window re-reads this much of the previous one: a late-published change is not
    missed, and keys make the repeat harmless."""
    return timedelta(seconds=getattr(settings, "CLAWBACK_OVERLAP_SECONDS", 60))


@dataclass
class FeedReport:
    channel: str
    stream: str
    outcome: str  # done | paced | failed | busy | idle
    pages: int = 0
    items: int = 0
    reversals: int = 0
    retry_in: float | None = None
    message: str = ""

    def __str__(self) -> str:
        text = (
            f"{self.channel} {self.stream}: {self.outcome}, {self.pages} page(s), "
            f"{self.items} change(s), {self.reversals} reversal(s)"
        )
        if self.retry_in:
            text += f", next call in {self.retry_in:.0f} s"
        return text + (f" — {self.message}" if self.message else "")


def run_pass(*, team=None, max_seconds: float | None = None) -> list[FeedReport]:
    """One pass over every connected marketplace channel (of ``team``, or all teams)."""
    channels = Channel.objects.filter(kind__in=CLAIM_KINDS, status=Status.CONNECTED)
    if team is not None:
        channels = channels.filter(team=team)
    budget = max_seconds or getattr(settings, "CLAWBACK_MAX_SECONDS", 300)
    deadline = timezone.now() + timedelta(seconds=budget)
    reports = []
    for channel in channels.select_related("team").order_by("pk"):
        for stream in FEEDS:
            try:
                reports.append(run_feed(channel, stream, deadline=deadline))
            except Exception as exc:  # noqa: BLE001 - one broken feed must not stop the others
                log.exception("claw-back %s %s failed", channel.public_id, stream)
                reports.append(
                    FeedReport(
                        channel=channel.public_id,
                        stream=stream,
                        outcome="failed",
                        message=f"unexpected {type(exc).__name__}; resumes at the next run",
                    )
                )
    return reports


def _awards_since(channel: Channel, since: datetime | None):
    """Orders of this channel whose claim was awarded (at or after ``since``). The award is
    the approved → awarded step; awarded → awarded rows are partial refunds, not awards."""
    award = {"transitions__from_status": S.APPROVED, "transitions__to_status": S.AWARDED}
    if since is not None:
        award["transitions__created_at__gte"] = since  # in the same filter(): the same row
    claims = Claim.objects.filter(channel=channel, **award)
    return VerifiedOrder.objects.filter(pk__in=claims.values("verified_order_id"))


def _reach_back(stream: str, orders) -> datetime | None:
    """How far back a feed must read for these awarded orders. A refund is invisible to
    verification (the Orders APIs do not show it), so refunds are read from the purchase on;
    a cancellation before verification made the claim ineligible, so cancellations are read
    from the verification on (a short window: searchOrders is the scarce call)."""
    found = orders.aggregate(bought=Min("purchased_at"), seen=Min("verified_at"))
    if stream == ClawbackStream.REFUNDS:
        return found["bought"] or found["seen"]
    return found["seen"]


def _take_lease(cursor: ClawbackCursor, now: datetime) -> bool:
    return bool(
        ClawbackCursor.objects.filter(pk=cursor.pk)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(lease_until=now + LEASE)
    )


def run_feed(channel: Channel, stream: str, *, deadline: datetime | None = None) -> FeedReport:
    report = FeedReport(channel=channel.public_id, stream=stream, outcome="idle")
    cursor = ClawbackCursor.objects.filter(channel=channel, stream=stream).first()
    if cursor is None:
        start = _reach_back(stream, _awards_since(channel, None))
        if start is None:
            return report  # nothing ever earned through this channel: nothing to claw back
        cursor, _ = ClawbackCursor.objects.get_or_create(
            channel=channel, stream=stream, defaults={"watermark": start}
        )
    now = timezone.now()
    if not _take_lease(cursor, now):
        report.outcome = "busy"
        return report
    try:
        _read(channel, cursor, report, deadline or now + timedelta(minutes=5))
    finally:
        ClawbackCursor.objects.filter(pk=cursor.pk).update(lease_until=None)
    return report


def _open_window(channel: Channel, cursor: ClawbackCursor, now: datetime) -> None:
    """Start the next window [since, until). It reaches back for any order awarded since the
    last window opened: a change of it that an earlier window read was skipped then (nothing
    had been earned yet)."""
    since = cursor.watermark - _overlap()
    if cursor.last_run_at is not None:
        # Awards made while (or after) the last window was read; a minute of margin for
        # clocks that differ between the web and worker machines.
        late_awards = _awards_since(channel, cursor.last_run_at - timedelta(minutes=1))
        late = _reach_back(cursor.stream, late_awards)
        if late is not None and late < since:
            since = late
    cursor.window_since = since
    cursor.window_until = max(since + timedelta(seconds=1), now - _settle())
    cursor.page_token = ""
    cursor.last_run_at = now
    cursor.save(update_fields=["window_since", "window_until", "page_token", "last_run_at"])


def _read(channel: Channel, cursor: ClawbackCursor, report: FeedReport, deadline) -> None:
    method, operations = FEEDS[cursor.stream]
    operation = operations[channel.kind]
    connector = connector_for(channel)
    restarted = False
    if cursor.window_until is None:
        _open_window(channel, cursor, timezone.now())
    while True:
        if timezone.now() >= deadline:
            report.outcome, report.message = "paced", "time budget used; continues next pass"
            return
        wait = pacing.take(channel, operation)
        if wait > 0:
            report.outcome, report.retry_in = "paced", wait
            return
        try:
            page = getattr(connector, method)(
                since=cursor.window_since, until=cursor.window_until, page_token=cursor.page_token
            )
        except PageExpired as exc:
            if restarted or not cursor.page_token:
                return _failed(channel, cursor, report, exc)
            # The platform forgot the page: read the window again from its start (keys make
            # the repeats harmless).
            restarted = True
            cursor.page_token = ""
            cursor.save(update_fields=["page_token"])
            continue
        except RateLimited as exc:
            report.outcome, report.retry_in = "paced", exc.retry_after
            report.message = exc.message
            return
        except ConnectorError as exc:
            return _failed(channel, cursor, report, exc)
        report.pages += 1
        report.items += len(page.items)
        report.reversals += _apply(channel, cursor.stream, page.items)
        cursor.page_token = page.next_token
        cursor.pages_read += 1
        cursor.last_error = ""
        fields = ["page_token", "pages_read", "last_error"]
        if not page.next_token:
            cursor.watermark, cursor.window_since, cursor.window_until = (
                cursor.window_until,
                None,
                None,
            )
            fields += ["watermark", "window_since", "window_until"]
        cursor.save(update_fields=fields)
        if not page.next_token:
            report.outcome = "done"
            return


def _failed(channel, cursor, report, exc: ConnectorError) -> None:
    log.warning("claw-back %s %s: %s", channel.public_id, cursor.stream, type(exc).__name__)
    if exc.permanent:
        channel_services.channel_mark_failed(channel=channel, message=exc.message, permanent=True)
    cursor.last_error = exc.message[:300]
    cursor.save(update_fields=["last_error"])
    report.outcome, report.message = "failed", exc.message


# --- applying what changed ---------------------------------------------------------------


def _apply(channel: Channel, stream: str, items) -> int:
    """Claw back for the page's changes that touch awarded orders; returns new reversals."""
    if stream == ClawbackStream.ORDERS:
        wanted = {item.order_id: item for item in items if item.cancelled}
    else:
        wanted = {}
        for item in items:
            wanted.setdefault(item.order_id, []).append(item)
    if not wanted:
        return 0
    claims = (
        Claim.objects.filter(
            channel=channel,
            # A reversed claim is finished: the whole order was given back (the claim becomes
            # reversed only after its ledger work), so a re-read page has nothing to do there.
            status=S.AWARDED,
            verified_order__order_id__in=list(wanted),
        )
        .select_related("verified_order", "team", "channel")
        .order_by("pk")
    )
    made = 0
    for claim in claims:
        order = claim.verified_order
        key = award_key(channel.kind, order.order_id)
        if stream == ClawbackStream.ORDERS:
            made += _reverse(claim, f"claw-back:{key}", order.total, "order cancelled")
        else:
            for refund in wanted[order.order_id]:
                if refund.currency and order.currency and refund.currency != order.currency:
                    log.warning(
                        "claw-back %s: refund %s is in %s, the order in %s; left for staff",
                        claim.public_id,
                        refund.refund_id,
                        refund.currency,
                        order.currency,
                    )
                    continue
                made += _reverse(
                    claim,
                    f"claw-back:{key}:refund:{refund.refund_id}",
                    refund.amount,
                    "order refunded",
                )
        _settle_claim(claim)
    return made


def _reverse(claim: Claim, refund_key: str, amount: Decimal | None, why: str) -> int:
    """One reversal through the ledger's one door; 1 when it is new, 0 on a replay."""
    if amount is None or amount <= 0:
        return 0
    order = claim.verified_order
    key = award_key(claim.channel.kind, order.order_id)
    if LedgerEntry.objects.filter(team_id=claim.team_id, idempotency_key=refund_key).exists():
        return 0
    entry = loyalty_services.purchase_refund(
        team=claim.team,
        key=key,
        refund_key=refund_key,
        refund_amount=amount,
        source=claim.channel.kind,
        description=f"{claim.channel.get_kind_display()} order {order.order_id}: {why}",
    )
    return 1 if entry is not None else 0


def _settle_claim(claim: Claim) -> None:
    """Bring the claim (and its verified order) in line with the ledger: what was refunded,
    how many points went back, and — when the whole order is gone — status reversed.

    Read through indexed lookups only (the award's key, its reversals, its pending hold): a
    key-prefix search would scan the team's whole ledger."""
    order = claim.verified_order
    key = award_key(claim.channel.kind, order.order_id)
    earned = LedgerEntry.objects.filter(
        team_id=claim.team_id, idempotency_key=key, kind=EntryKind.EARN
    ).first()
    totals = {"points": 0, "amount": Decimal(0)}
    if earned is not None:
        found = earned.reversals.aggregate(points=Sum("points"), amount=Sum("amount"))
        totals = {"points": found["points"] or 0, "amount": found["amount"] or Decimal(0)}
    points = -totals["points"]
    refunded = totals["amount"]
    pending = HeldAward.objects.filter(
        team_id=claim.team_id, idempotency_key=key, reason=HoldReason.VESTING
    ).first()
    if pending is not None and pending.original_points is not None:
        # Refunded while pending its return window: the hold was reduced instead.
        points += pending.original_points - (pending.points or 0)
        refunded += pending.refunded_amount
    refunded = min(refunded, order.total or Decimal(0))
    cancelled = LedgerEntry.objects.filter(
        team_id=claim.team_id, idempotency_key=f"claw-back:{key}"
    ).exists()
    whole = cancelled or (order.total is not None and refunded >= order.total)
    with transaction.atomic():
        VerifiedOrder.objects.filter(pk=order.pk).update(
            refunded_total=refunded, cancelled=order.cancelled or cancelled
        )
        current = Claim.objects.select_for_update().get(pk=claim.pk)
        if current.status == S.REVERSED or (
            current.points_reversed == points and not (whole and current.status == S.AWARDED)
        ):
            return
        reason = "order cancelled" if cancelled else "order refunded"
        if whole:
            claim_transition(claim=current, to=S.REVERSED, reason=reason, points_reversed=points)
        else:
            claim_transition(
                claim=current,
                to=S.AWARDED,
                reason=f"order partly refunded: −{points} points",
                points_reversed=points,
            )
