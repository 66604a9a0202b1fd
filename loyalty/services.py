"""The one door to a balance: award, adjust, redeem, claw back, release or void a hold.

Every function here runs in one transaction with the member row locked, writes its ledger
entry and its outbox event together, and leans on database constraints for exactly-once.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_FLOOR, Decimal, InvalidOperation

from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from . import errors
from .models import (
    Coupon,
    CouponStatus,
    EarningPolicy,
    EntryKind,
    HeldAward,
    HoldReason,
    HoldStatus,
    LedgerEntry,
    Member,
    MemberStatus,
    NegativeBalancePolicy,
    OutboxEvent,
    Reward,
    Source,
    Team,
    Tier,
    UnrecoveredPoints,
)

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("100000000")  # one purchase; larger is a typo or an attack
MAX_AWARD = 100_000_000  # points one award may grant; keeps every sum far from integer limits


@dataclass(frozen=True)
class AwardResult:
    """What an award did: the entry granted (if any) and the part held (if any)."""

    entry: LedgerEntry | None
    held: HeldAward | None
    created: bool  # False when the idempotency key had been used before
    pending: HeldAward | None = None  # purchase points vesting over the team's return window

    @property
    def points(self) -> int:
        return self.entry.points if self.entry else 0


# --- helpers -------------------------------------------------------------------------------


def lock_member(member_pk: int) -> Member:
    # The member row is THE lock for a balance: every writer takes it first, so a balance,
    # its daily cap and its coupons are decided by one writer at a time.
    # of=("self",): lock the member only; a plain FOR UPDATE on the join would also lock the
    # team row and queue every award of the team behind every other.
    return Member.objects.select_for_update(of=("self",)).select_related("team").get(pk=member_pk)


def _emit(team: Team, event_type: str, payload: dict) -> None:
    OutboxEvent.objects.create(team=team, event_type=event_type, payload=payload)


def _entry_event(entry: LedgerEntry, member: Member) -> dict:
    return {
        "memberId": member.public_id,
        "transactionId": entry.public_id,
        "points": entry.points,
        "kind": entry.kind,
        "source": entry.source,
        "balance": member.balance,
        "amount": str(entry.amount) if entry.amount is not None else None,
        "currency": entry.currency or None,
        "idempotencyKey": entry.idempotency_key,
    }


def _tier_for(team_id: int, lifetime_points: int) -> Tier | None:
    return (
        Tier.objects.filter(team_id=team_id, threshold__lte=max(lifetime_points, 0))
        .order_by("-threshold")
        .first()
    )


def _apply(member: Member, *, points: int, lifetime: int = 0) -> None:
    """Move the cached balance (member must be locked) and re-place the member in a tier."""
    member.balance += points
    member.lifetime_points += lifetime
    fields = ["balance", "lifetime_points"]
    if lifetime:
        tier = _tier_for(member.team_id, member.lifetime_points)
        if (tier.pk if tier else None) != member.tier_id:  # ids: no query for the old tier
            member.tier = tier
            fields.append("tier")
    member.save(update_fields=fields)


def _write_entry(member: Member, **fields) -> LedgerEntry:
    return LedgerEntry.objects.create(team_id=member.team_id, member=member, **fields)


def _clean_key(key: str | None) -> str | None:
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > 300:
        raise errors.InvalidInput("The idempotency key must be 1 to 300 characters.")
    return key


def _entry_with_key(team_id: int, key: str | None) -> LedgerEntry | None:
    """The entry an idempotency key already produced in the team, if any."""
    if not key:
        return None
    return LedgerEntry.objects.filter(team_id=team_id, idempotency_key=key).first()


def _existing_award(team_id: int, key: str) -> AwardResult | None:
    entry = _entry_with_key(team_id, key)
    holds = {
        h.reason == HoldReason.VESTING: h
        for h in HeldAward.objects.filter(team_id=team_id, idempotency_key__in=[key, _rest(key)])
    }
    if entry or holds:
        return AwardResult(
            entry=entry, held=holds.get(False), pending=holds.get(True), created=False
        )
    return None


def _rest(key: str) -> str:
    # With vesting, the pending part holds the award's key, so the over-cap rest needs its own.
    return f"{key}#over-cap"


def purchase_points(amount: Decimal, rate: Decimal, multiplier: Decimal) -> int:
    """The one formula: floor(amount × rate × tier multiplier)."""
    return int((amount * rate * multiplier).to_integral_value(rounding=ROUND_FLOOR))


def parse_amount(value) -> Decimal:
    """A positive money amount with at most 2 decimals; floats are refused, never rounded."""
    if isinstance(value, float):
        raise errors.InvalidInput("Amounts must be given as decimal strings, not floats.")
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise errors.InvalidInput(f"'{value}' is not an amount.") from None
    if not amount.is_finite() or amount <= 0:
        raise errors.InvalidInput("A purchase amount must be greater than zero.")
    if amount != amount.quantize(CENT):
        raise errors.InvalidInput("A purchase amount has at most two decimals.")
    if amount >= MAX_AMOUNT:
        raise errors.InvalidInput("That purchase amount is too large.")
    return amount.quantize(CENT)


def earned_today(member: Member) -> int:
    """Points this member earned today (the team's day), the figure the daily cap limits."""
    start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    granted = LedgerEntry.objects.filter(
        member_id=member.pk, kind=EntryKind.EARN, created_at__gte=start, vested=False
    ).aggregate(s=Sum("points"))["s"]
    # Points earned today but pending their return window count today, not when they vest.
    pending = HeldAward.objects.filter(
        member_id=member.pk,
        reason=HoldReason.VESTING,
        created_at__gte=start,
        status__in=[HoldStatus.HELD, HoldStatus.RELEASED],
    ).aggregate(s=Sum("original_points"))["s"]
    return (granted or 0) + (pending or 0)


def _cap_room(member: Member) -> int | None:
    """Points the member may still earn today; None = no cap. Raises if it cannot be known."""
    cap = member.team.daily_cap
    if cap is None:
        return None
    with transaction.atomic():  # a savepoint: a failed check must not poison the award
        return max(0, cap - earned_today(member))


# --- enrollment ----------------------------------------------------------------------------


def member_enroll(*, team: Team, email: str, password: str = "", name: str = "") -> Member:
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise errors.InvalidInput("Enter a valid e-mail address.") from None
    if password and len(password) < 8:
        raise errors.InvalidInput("Choose a password of at least 8 characters.")
    try:
        with transaction.atomic():
            member = Member.objects.create(
                team=team,
                email=email,
                name=(name or "").strip()[:200],
                password=make_password(password) if password else "",
                tier=_tier_for(team.pk, 0),
            )
            _emit(team, "member.enrolled", {"memberId": member.public_id})
    except IntegrityError:
        raise errors.AlreadyEnrolled(
            "That e-mail is already enrolled here. Log in instead."
        ) from None
    return member


# --- team settings -------------------------------------------------------------------------


def team_negative_balance_set(*, team: Team, policy: str, actor=None) -> Team:
    """Choose what a claw-back does with points a member already spent (see points_claw_back).

    Applies to refunds from now on; past claw-backs stay as they were. The change is logged
    in the back office's history of the team, with who made it."""
    if policy not in NegativeBalancePolicy.values:
        raise errors.InvalidInput(
            "Choose whether a balance may go below zero or stops at zero.",
            field="negative_balance",
        )
    with transaction.atomic():
        team = Team.objects.select_for_update().get(pk=team.pk)
        if team.negative_balance == policy:
            return team
        old = team.get_negative_balance_display()
        team.negative_balance = policy
        team.save(update_fields=["negative_balance"])
        if actor is not None and actor.is_authenticated:
            from django.contrib.admin.models import CHANGE, LogEntry

            LogEntry.objects.log_actions(
                user_id=actor.pk,
                queryset=[team],
                action_flag=CHANGE,
                change_message=(
                    f"Refunds of spent points: “{old}” → “{team.get_negative_balance_display()}”"
                ),
                single_object=True,
            )
    return team


# --- earning -------------------------------------------------------------------------------


def points_award(
    *,
    member: Member,
    key: str,
    source: str,
    description: str = "",
    amount=None,
    currency: str | None = None,
    points: int | None = None,
) -> AwardResult:
    """Award points for a purchase ``amount`` (by the formula) or a fixed number of ``points``.

    Exactly once per ``key`` in the team: a repeat returns the original result. What the daily
    cap does not allow is held (visible, releasable), never dropped and never granted.
    """
    key = _clean_key(key)
    if key is None:
        raise errors.InvalidInput("An award needs an idempotency key.")
    if (amount is None) == (points is None):
        raise errors.InvalidInput("Give either a purchase amount or a number of points.")
    if points is not None and (
        not isinstance(points, int) or isinstance(points, bool) or points <= 0
    ):
        raise errors.InvalidInput("Points to award must be a whole number greater than zero.")
    if points is not None and points > MAX_AWARD:
        raise errors.InvalidInput(f"One award grants at most {MAX_AWARD:,} points.")
    if amount is not None:
        amount = parse_amount(amount)
        currency = (currency or member.team.currency).strip().upper()

    try:
        with transaction.atomic():
            m = lock_member(member.pk)
            # Checked under the lock only: a concurrent twin has committed or not, and a
            # check before the lock would cost every new award two more queries.
            if (found := _existing_award(m.team_id, key)) is not None:
                return found
            return _award_locked(m, key, source, description[:500], amount, currency, points)
    except IntegrityError:
        # The unique key caught a race the lock did not (e.g. another member row).
        found = _existing_award(member.team_id, key)
        if found is None:
            raise
        return found


def _award_locked(m, key, source, description, amount, currency, points) -> AwardResult:
    if m.status == MemberStatus.BLOCKED:
        raise errors.MemberBlocked("This member is blocked and cannot earn points.")
    rate = multiplier = None
    hold_fields = {
        "amount": amount,
        "currency": currency or "",
        "source": source,
        "description": description,
        "idempotency_key": key,
    }
    if amount is not None:
        policy = EarningPolicy.objects.filter(team_id=m.team_id, currency=currency).first()
        if policy is None:
            held = HeldAward.objects.create(
                team_id=m.team_id, member=m, points=None, reason=HoldReason.NO_RATE, **hold_fields
            )
            _emit(m.team, "points.held", _hold_event(held, m))
            return AwardResult(entry=None, held=held, created=True)
        rate = policy.rate
        multiplier = m.tier.multiplier if m.tier else Decimal(1)
        points = purchase_points(amount, rate, multiplier)
        if points > MAX_AWARD:
            raise errors.InvalidInput(
                f"That purchase would earn {points:,} points, more than one award may grant."
            )

    try:
        room = _cap_room(m)
    except DatabaseError:
        room = 0  # fail closed: the cap could not be checked, so nothing is granted now
        reason = HoldReason.CAP_UNAVAILABLE
    else:
        reason = HoldReason.OVER_CAP
    grant = points if room is None else min(points, room)
    rest = points - grant

    entry = held = pending = None
    vesting_days = m.team.vesting_days if amount is not None else 0
    if grant > 0 and vesting_days:
        pending = HeldAward.objects.create(
            team_id=m.team_id,
            member=m,
            points=grant,
            original_points=grant,
            reason=HoldReason.VESTING,
            rate=rate,
            multiplier=multiplier,
            release_at=timezone.now() + timedelta(days=vesting_days),
            **hold_fields,
        )
        _emit(m.team, "points.pending", _hold_event(pending, m))
    elif grant > 0 or rest == 0:
        entry = _write_entry(
            m,
            points=grant,
            kind=EntryKind.EARN,
            source=source,
            description=description,
            idempotency_key=key,
            amount=amount,
            currency=currency or "",
            rate=rate,
            multiplier=multiplier,
        )
        _apply(m, points=grant, lifetime=grant)
        _emit(m.team, "points.awarded", _entry_event(entry, m))
    if amount is not None and (entry or pending):
        _emit_purchase(m, key, entry or pending, points_now=grant)
    if rest > 0:
        if pending is not None:
            hold_fields["idempotency_key"] = _rest(key)
        held = HeldAward.objects.create(
            team_id=m.team_id, member=m, points=rest, reason=reason, **hold_fields
        )
        _emit(m.team, "points.held", _hold_event(held, m))
    return AwardResult(entry=entry, held=held, pending=pending, created=True)


def _emit_purchase(m: Member, key: str, record, *, points_now: int) -> None:
    """Every purchase, whatever its channel: order.fulfilled, then purchase.first or
    purchase.repeat, each with the points it earned (journeys and e-mails key off these)."""
    earlier = (
        LedgerEntry.objects.filter(member_id=m.pk, kind=EntryKind.EARN, amount__isnull=False)
        .exclude(idempotency_key=key)
        .exists()
        or HeldAward.objects.filter(member_id=m.pk, reason=HoldReason.VESTING)
        .exclude(idempotency_key=key)
        .exists()
    )
    data = {
        "memberId": m.public_id,
        "orderKey": key,
        "points": points_now,
        "pending": record.reason == HoldReason.VESTING if isinstance(record, HeldAward) else False,
        "amount": str(record.amount),
        "currency": record.currency,
        "source": record.source,
    }
    _emit(m.team, "order.fulfilled", data)
    _emit(m.team, "purchase.repeat" if earlier else "purchase.first", data)


def _hold_event(held: HeldAward, member: Member) -> dict:
    return {
        "memberId": member.public_id,
        "holdId": held.public_id,
        "points": held.points,
        "reason": held.reason,
        "idempotencyKey": held.idempotency_key,
    }


def points_adjust(
    *, member: Member, points: int, source: str, description: str = "", key: str | None = None
) -> LedgerEntry:
    """A signed correction outside the formula (goodwill, or a compensating adjustment)."""
    key = _clean_key(key)
    if not isinstance(points, int) or isinstance(points, bool) or points == 0:
        raise errors.InvalidInput("An adjustment is a non-zero whole number of points.")
    if (e := _entry_with_key(member.team_id, key)) is not None:
        return e
    try:
        with transaction.atomic():
            m = lock_member(member.pk)
            if m.status == MemberStatus.BLOCKED and points > 0:
                raise errors.MemberBlocked("This member is blocked and cannot earn points.")
            entry = _write_entry(
                m,
                points=points,
                kind=EntryKind.ADJUST,
                source=source,
                description=description[:500],
                idempotency_key=key,
            )
            _apply(m, points=points)
            _emit(m.team, "points.adjusted", _entry_event(entry, m))
            return entry
    except IntegrityError:
        if (e := _entry_with_key(member.team_id, key)) is not None:
            return e
        raise


def points_claw_back(
    *,
    entry: LedgerEntry,
    key: str | None = None,
    refund_amount=None,
    points: int | None = None,
    source: str | None = None,
    description: str = "",
) -> LedgerEntry:
    """Reverse what ``entry`` actually earned: whole, by a refunded amount, or by points.

    Proportional to the amount the purchase earned on (never re-computed with today's rate or
    tier); the running total of reversals never exceeds the original points. The default key is
    ``claw-back:<original key>``; several partial refunds pass one key each.

    Points the member already spent: by default the balance goes below zero (and redemption
    waits until it is earned back). A team that stops at zero takes back at most the balance
    and records the rest as ``UnrecoveredPoints``; the claw-back entry is written even when it
    takes nothing, so its key is used once, and the rest counts as reversed for later refunds.
    """
    if entry.kind != EntryKind.EARN:
        raise errors.InvalidInput("Only earned points can be clawed back.")
    key = _clean_key(key) or f"claw-back:{entry.idempotency_key or entry.public_id}"
    if refund_amount is not None:
        refund_amount = parse_amount(refund_amount)
        if entry.amount is None:
            raise errors.InvalidInput("That award was not a purchase; claw back by points.")
    if points is not None and (not isinstance(points, int) or points <= 0):
        raise errors.InvalidInput("Points to claw back must be a whole number above zero.")

    def existing():
        return _entry_with_key(entry.team_id, key)

    if (found := existing()) is not None:
        return found
    try:
        with transaction.atomic():
            m = lock_member(entry.member_id)
            if (found := existing()) is not None:
                return found
            prior = list(entry.reversals.values_list("points", "amount"))
            # What earlier refunds reversed: what they took back plus what they could not.
            already = -sum(p for p, _ in prior) + _unrecovered_of(entry)
            if refund_amount is not None:
                refunded = sum((a or Decimal(0) for _, a in prior), Decimal(0)) + refund_amount
                refunded = min(refunded, entry.amount)
                target = (
                    int((entry.points * refunded / entry.amount).to_integral_value(ROUND_FLOOR))
                    if refunded < entry.amount
                    else entry.points
                )
                claw = max(0, target - already)
            elif points is not None:
                claw = min(points, entry.points - already)
            else:
                claw = entry.points - already
            take = claw
            if m.team.negative_balance == NegativeBalancePolicy.STOP_AT_ZERO:
                # Read under the member lock: two refunds at once cannot both take the same
                # remaining points and push the balance below zero.
                take = min(claw, max(m.balance, 0))
            reversal = _write_entry(
                m,
                points=-take,
                kind=EntryKind.CLAW_BACK,
                source=source or entry.source,
                description=(description or f"Reverses {entry.public_id}")[:500],
                idempotency_key=key,
                amount=refund_amount,
                currency=entry.currency,
                reverses=entry,
            )
            # The refunded order no longer qualifies for a tier, recovered or not.
            _apply(m, points=-take, lifetime=-claw)
            fully_reversed = already + claw >= entry.points and (
                refund_amount is None or refunded >= entry.amount
            )
            if fully_reversed:
                _void_hold_of(entry, note=f"Order reversed by {reversal.public_id}")
            _emit(
                m.team,
                "points.clawed_back",
                _entry_event(reversal, m) | {"reverses": entry.public_id},
            )
            if claw > take:
                _record_unrecovered(m, entry, reversal, claw - take)
            return reversal
    except IntegrityError:
        if (found := existing()) is not None:
            return found
        raise


def _unrecovered_of(entry: LedgerEntry) -> int:
    return entry.unrecovered.aggregate(s=Sum("points"))["s"] or 0


def _record_unrecovered(
    m: Member, entry: LedgerEntry, reversal: LedgerEntry, points: int
) -> UnrecoveredPoints:
    rest = UnrecoveredPoints.objects.create(
        team_id=m.team_id,
        member=m,
        reverses=entry,
        entry=reversal,
        points=points,
        description=(
            f"{entry.description or entry.idempotency_key or entry.public_id}: "
            f"{points} points already spent, not recovered"
        )[:500],
    )
    _emit(
        m.team,
        "points.unrecovered",
        {
            "memberId": m.public_id,
            "unrecoveredId": rest.public_id,
            "transactionId": reversal.public_id,
            "reverses": entry.public_id,
            "points": points,
            "balance": m.balance,
            "idempotencyKey": reversal.idempotency_key,
        },
    )
    return rest


def _void_hold_of(entry: LedgerEntry, *, note: str) -> None:
    # Held points of a purchase that is fully reversed must not be released later.
    keys = [entry.idempotency_key, _rest(entry.idempotency_key or "")]
    HeldAward.objects.filter(
        team_id=entry.team_id, idempotency_key__in=keys, status=HoldStatus.HELD
    ).update(status=HoldStatus.VOIDED, resolved_at=timezone.now(), resolution_note=note)


# --- held awards ---------------------------------------------------------------------------


def _lock_hold(hold: HeldAward, *, vesting: bool = False) -> tuple[Member, HeldAward]:
    m = lock_member(hold.member_id)  # member first, then hold: one order everywhere
    h = HeldAward.objects.select_for_update().get(pk=hold.pk)
    if h.status != HoldStatus.HELD:
        raise errors.IllegalTransition(f"This award was already {h.status}.")
    if (h.reason == HoldReason.VESTING) != vesting:
        raise errors.IllegalTransition(
            "Pending purchase points vest on their own when the return window closes."
            if h.reason == HoldReason.VESTING
            else "Only pending purchase points vest."
        )
    return m, h


def _resolve(h: HeldAward, status: str, actor, note: str, entry=None) -> None:
    h.status, h.entry, h.resolved_by = status, entry, actor
    h.resolved_at, h.resolution_note = timezone.now(), note[:500]
    h.save(update_fields=["status", "entry", "resolved_by", "resolved_at", "resolution_note"])


@transaction.atomic
def hold_release(
    *, hold: HeldAward, actor, points: int | None = None, note: str = ""
) -> LedgerEntry:
    """Staff grant a held award (a deliberate override of the cap)."""
    m, h = _lock_hold(hold)
    if h.points is None:
        if not isinstance(points, int) or points <= 0:
            raise errors.InvalidInput("No rate applies to this award: enter the points to grant.")
    else:
        points = h.points
    entry = _write_entry(
        m,
        points=points,
        kind=EntryKind.EARN,
        source=h.source,
        description=(h.description or "Held award")[:480] + " (released)",
        idempotency_key=f"hold:{h.public_id}:release",
        amount=h.amount,
        currency=h.currency,
    )
    _apply(m, points=points, lifetime=points)
    _resolve(h, HoldStatus.RELEASED, actor, note or "Released by staff", entry)
    _emit(m.team, "points.awarded", _entry_event(entry, m) | {"holdId": h.public_id})
    return entry


@transaction.atomic
def hold_void(*, hold: HeldAward, actor, note: str = "") -> HeldAward:
    m, h = _lock_hold(hold)
    _resolve(h, HoldStatus.VOIDED, actor, note or "Voided by staff")
    _emit(m.team, "points.hold_voided", _hold_event(h, m))
    return h


@transaction.atomic
def hold_retry_cap(*, hold: HeldAward) -> LedgerEntry | None:
    """Re-check a hold whose cap check had failed: grant what fits, keep the rest held."""
    m, h = _lock_hold(hold)
    if h.reason != HoldReason.CAP_UNAVAILABLE:
        raise errors.IllegalTransition("Only holds whose cap check failed are retried.")
    room = _cap_room(m)  # if it fails again, the transaction rolls back and the hold stays
    grant = h.points if room is None else min(h.points, room)
    entry = None
    if grant > 0:
        entry = _write_entry(
            m,
            points=grant,
            kind=EntryKind.EARN,
            source=h.source,
            description=h.description,
            idempotency_key=f"hold:{h.public_id}:retry",
            amount=h.amount,
            currency=h.currency,
        )
        _apply(m, points=grant, lifetime=grant)
        _emit(m.team, "points.awarded", _entry_event(entry, m) | {"holdId": h.public_id})
    if grant == h.points:
        _resolve(h, HoldStatus.RELEASED, None, "Cap check recovered", entry)
    else:
        h.points, h.reason = h.points - grant, HoldReason.OVER_CAP
        h.save(update_fields=["points", "reason"])
    return entry


# --- vesting --------------------------------------------------------------------------------


@transaction.atomic
def hold_vest(*, hold: HeldAward) -> LedgerEntry:
    """The return window closed: pending purchase points become spendable.

    The entry carries the purchase's own key and the amount still standing behind it, so a
    later refund claws back exactly as if the points had been granted at once."""
    m, h = _lock_hold(hold, vesting=True)
    entry = _write_entry(
        m,
        points=h.points,
        kind=EntryKind.EARN,
        source=h.source,
        vested=True,
        description=(h.description or "Purchase")[:480] + " (vested)",
        idempotency_key=h.idempotency_key,
        amount=h.amount - h.refunded_amount,
        currency=h.currency,
        rate=h.rate,
        multiplier=h.multiplier,
    )
    _apply(m, points=h.points, lifetime=h.points)
    _resolve(h, HoldStatus.RELEASED, None, "Vested: the return window closed", entry)
    _emit(m.team, "points.awarded", _entry_event(entry, m) | {"holdId": h.public_id})
    return entry


def purchase_refund(
    *,
    team: Team,
    key: str,
    refund_key: str,
    refund_amount,
    source: str | None = None,
    description: str = "",
) -> LedgerEntry | None:
    """A purchase (awarded under ``key``) was refunded by ``refund_amount``.

    Granted points are clawed back proportionally; points still pending their return window
    are reduced (or cancelled) instead. Exactly once per ``refund_key``. None when no award
    exists for the purchase."""
    refund_amount = parse_amount(refund_amount)
    entry = LedgerEntry.objects.filter(team=team, idempotency_key=key, kind=EntryKind.EARN).first()
    if entry is not None:
        return points_claw_back(
            entry=entry,
            refund_amount=refund_amount,
            key=refund_key,
            source=source,
            description=description,
        )
    hold = HeldAward.objects.filter(
        team=team, idempotency_key=key, reason=HoldReason.VESTING
    ).first()
    if hold is None:
        return None
    try:
        with transaction.atomic():
            m = lock_member(hold.member_id)
            if (done := _entry_with_key(team.pk, refund_key)) is not None:
                return done
            h = HeldAward.objects.select_for_update().get(pk=hold.pk)
            if h.status != HoldStatus.RELEASED:
                return _reduce_pending(m, h, refund_key, refund_amount, source, description)
    except IntegrityError:
        return LedgerEntry.objects.get(team=team, idempotency_key=refund_key)
    # It vested between the two reads: now an ordinary claw-back of the vested entry.
    return purchase_refund(
        team=team,
        key=key,
        refund_key=refund_key,
        refund_amount=refund_amount,
        source=source,
        description=description,
    )


def _reduce_pending(m, h, refund_key, refund_amount, source, description) -> LedgerEntry:
    refunded = min(h.refunded_amount + refund_amount, h.amount)
    keep = (
        0
        if refunded >= h.amount
        else h.original_points
        - int((h.original_points * refunded / h.amount).to_integral_value(ROUND_FLOOR))
    )
    cut = max(0, (h.points or 0) - keep)
    h.points, h.refunded_amount = keep, refunded
    fields = ["points", "refunded_amount"]
    if keep == 0 and h.status == HoldStatus.HELD:
        h.status, h.resolved_at = HoldStatus.VOIDED, timezone.now()
        h.resolution_note = "Refunded inside the return window"
        fields += ["status", "resolved_at", "resolution_note"]
    h.save(update_fields=fields)
    # A zero-point record: the refund happened, exactly once, and nothing spendable moved.
    record = _write_entry(
        m,
        points=0,
        kind=EntryKind.CLAW_BACK,
        source=source or h.source,
        description=(
            description or f"Refund inside the return window: {cut} pending points cancelled"
        )[:500],
        idempotency_key=refund_key,
        amount=refund_amount,
        currency=h.currency,
    )
    _emit(m.team, "points.pending_reduced", _hold_event(h, m) | {"cancelled": cut})
    return record


# --- spending ------------------------------------------------------------------------------


def reward_redeem(*, member: Member, reward: Reward, key: str | None = None) -> Coupon:
    """Spend points on a reward: one redeem entry and one coupon, together."""
    key = _clean_key(key)
    if reward.team_id != member.team_id or not reward.active:
        raise errors.NotFound("That reward is not available.")

    def existing():
        if key is None:
            return None
        return Coupon.objects.filter(
            entry__team_id=member.team_id, entry__idempotency_key=key
        ).first()

    if (c := existing()) is not None:
        return c
    with transaction.atomic():
        m = lock_member(member.pk)
        # Re-checked under the lock: a double submit's twin may have committed meanwhile.
        if (c := existing()) is not None:
            return c
        if m.status == MemberStatus.BLOCKED:
            raise errors.MemberBlocked("This member is blocked and cannot redeem rewards.")
        if m.balance < 0:
            raise errors.NegativeBalance(
                f"Your balance is {_signed(m.balance)} points after a refund; rewards unlock "
                "once you earn it back."
            )
        if m.balance < reward.points_cost:
            raise errors.InsufficientPoints(
                f"{reward.name} costs {reward.points_cost} points; the balance is {m.balance}."
            )
        entry = _write_entry(
            m,
            points=-reward.points_cost,
            kind=EntryKind.REDEEM,
            source=Source.PORTAL,
            description=f"Reward: {reward.name}"[:500],
            idempotency_key=key,
        )
        _apply(m, points=-reward.points_cost)
        coupon = Coupon.objects.create(
            team_id=m.team_id,
            member=m,
            reward=reward,
            entry=entry,
            code=_coupon_code(),
            expires_at=timezone.now() + timedelta(days=reward.valid_days),
        )
        _emit(m.team, "reward.redeemed", _entry_event(entry, m) | {"couponId": coupon.public_id})
        return coupon


def _signed(points: int) -> str:
    # A true minus sign: read out as "minus" and never lost at the start of a line.
    return f"{points:,}".replace("-", "\u2212")


def _coupon_code() -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I to misread at a register
    return "".join(secrets.choice(alphabet) for _ in range(10))


@transaction.atomic
def coupon_redeem(*, team: Team, coupon_id: str) -> Coupon:
    """Use a coupon once. Unknown, another team's, used or expired all answer the same."""
    now = timezone.now()
    # A conditional UPDATE decides the race: only one caller can move it out of 'issued'.
    done = Coupon.objects.filter(
        team=team, public_id=coupon_id, status=CouponStatus.ISSUED, expires_at__gt=now
    ).update(status=CouponStatus.REDEEMED, redeemed_at=now)
    if done != 1:
        raise errors.CouponNotRedeemable("Coupon not found or already redeemed.")
    coupon = Coupon.objects.select_related("member").get(team=team, public_id=coupon_id)
    _emit(
        team,
        "coupon.redeemed",
        {"couponId": coupon.public_id, "memberId": coupon.member.public_id, "code": coupon.code},
    )
    return coupon
