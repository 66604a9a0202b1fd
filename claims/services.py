"""Every change of a claim: submit, the state machine's transitions (checked, audited in the
same transaction), approve and reject. Views, tasks and the admin call only these."""

from __future__ import annotations

import re
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from channels_app import vault
from channels_app.connectors import connector_class
from channels_app.models import Channel, Kind, Status
from loyalty import errors
from loyalty import services as loyalty_services
from loyalty.models import ADMIN_ROLES, Member, MemberStatus, Role, TeamMembership

from .errors import AlreadyClaimed, ClaimsClosed, NotAllowed, TooManyClaims
from .models import ACTIVE_STATUSES, Claim, ClaimStatus, ClaimTransition, Rollout, Stage

S = ClaimStatus
CLAIM_KINDS = (Kind.AMAZON, Kind.TIKTOK)
DAILY_LIMIT = 10  # submissions per member per 24 h
_POSTAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 -]{1,14}$")

# from → the states a claim may move to
ALLOWED = {
    S.SUBMITTED: {S.VERIFYING, S.REJECTED},
    S.VERIFYING: {S.PENDING_REVIEW, S.NOT_FOUND, S.INELIGIBLE, S.RETRYING, S.REJECTED},
    S.RETRYING: {S.VERIFYING, S.REJECTED},
    S.PENDING_REVIEW: {S.APPROVED, S.REJECTED},
    S.APPROVED: {S.AWARDED},
    S.AWARDED: {S.AWARDED, S.REVERSED},  # a partial refund is recorded as awarded → awarded
    S.REVERSED: set(),
    S.REJECTED: set(),
    S.NOT_FOUND: set(),
    S.INELIGIBLE: set(),
}
# Claims of an order that already earned (or is about to): a new claim of it is refused.
CLAIMED_STATUSES = (S.APPROVED, S.AWARDED, S.REVERSED)


def award_key(kind: str, order_id: str) -> str:
    return f"{kind}-order:{order_id}"


def postal_context(claim: Claim) -> str:
    return f"{claim.public_id}:postal_code"


def postal_code_of(claim: Claim) -> str | None:
    """The postal code the member typed, opened from the vault for an in-memory comparison."""
    if not claim.sealed_postal_code:
        return None
    return vault.open_sealed(claim.sealed_postal_code, context=postal_context(claim))


# --- the state machine -----------------------------------------------------------------------


def check_transition(from_status: str, to_status: str) -> None:
    if to_status not in ALLOWED.get(from_status, set()):
        raise errors.IllegalTransition(
            f"A claim that is {ClaimStatus(from_status).label} cannot become "
            f"{ClaimStatus(to_status).label}."
        )


def _record(claim: Claim, from_status: str, to_status: str, actor, reason: str) -> None:
    ClaimTransition.objects.create(
        claim=claim,
        from_status=from_status,
        to_status=to_status,
        actor=actor if getattr(actor, "pk", None) else None,
        reason=reason[:300],
    )


def claim_transition(*, claim: Claim, to: str, actor=None, reason: str = "", **fields) -> Claim:
    """Move a claim to ``to`` under a row lock, if the state machine allows it, with its audit
    row in the same transaction. ``fields`` are saved with the move. Returns the fresh claim."""
    with transaction.atomic():
        locked = Claim.objects.select_for_update().get(pk=claim.pk)
        check_transition(locked.status, to)
        before = locked.status
        locked.status = to
        locked.status_reason = reason[:300]
        for name, value in fields.items():
            setattr(locked, name, value)
        locked.save()
        _record(locked, before, to, actor, reason)
    claim.__dict__.update({k: v for k, v in locked.__dict__.items() if not k.startswith("_")})
    return locked


def claim_start_verifying(*, claim_id: int) -> Claim | None:
    """Claim the verification work: a conditional UPDATE, so of two workers only one fetches.

    None when the claim is not waiting for verification (already taken, or finished)."""
    with transaction.atomic():
        current = Claim.objects.filter(pk=claim_id).values_list("status", flat=True).first()
        if current not in (S.SUBMITTED, S.RETRYING):
            return None
        now = timezone.now()
        taken = Claim.objects.filter(pk=claim_id, status=current).update(
            status=S.VERIFYING, status_reason="", next_attempt_at=None, updated_at=now
        )
        if not taken:
            return None
        claim = Claim.objects.select_related("channel", "member", "member__tier", "team").get(
            pk=claim_id
        )
        _record(claim, current, S.VERIFYING, None, "")
        Claim.objects.filter(pk=claim_id).update(attempts=claim.attempts + 1)
        claim.attempts += 1
        return claim


# --- submit ------------------------------------------------------------------------------------


def claim_channels(member: Member):
    """The marketplaces this member may claim orders of: the team's connected Amazon / TikTok
    channels whose rollout is on (or staff, for staff test members)."""
    stages = [Stage.ON, Stage.STAFF] if member.is_test else [Stage.ON]
    return (
        Channel.objects.filter(
            team_id=member.team_id,
            kind__in=CLAIM_KINDS,
            claim_rollouts__team_id=member.team_id,
            claim_rollouts__stage__in=stages,
        )
        .exclude(status=Status.DISCONNECTED)
        .order_by("kind", "name")
    )


def _channel_for(member: Member, channel_public_id: str) -> Channel:
    channel = Channel.objects.filter(
        team_id=member.team_id, public_id=(channel_public_id or "").strip(), kind__in=CLAIM_KINDS
    ).first()
    if channel is None or channel.status == Status.DISCONNECTED:
        raise errors.InvalidInput("Pick one of the marketplaces in the list.", field="channel")
    rollout = Rollout.objects.filter(team_id=member.team_id, channel=channel).first()
    stage = rollout.stage if rollout else Stage.OFF
    if stage == Stage.ON or (stage == Stage.STAFF and member.is_test):
        return channel
    raise ClaimsClosed(
        f"Claims for {channel.get_kind_display()} orders are not open yet.", field="channel"
    )


def clean_order_number(kind: str, order_number: str) -> str:
    number = "".join((order_number or "").split())
    pattern = connector_class(kind).order_number_pattern
    if not number or len(number) > 100 or not re.match(pattern, number):
        example = "such as 112-1234567-1234567" if kind == Kind.AMAZON else "digits only"
        raise errors.InvalidInput(
            f"That is not a valid {Kind(kind).label} order number ({example}).",
            field="order_number",
        )
    return number


def _already_claimed(channel: Channel, number: str) -> bool:
    return Claim.objects.filter(
        channel=channel, order_number=number, status__in=CLAIMED_STATUSES
    ).exists()


def claim_submit(
    *, member: Member, channel_public_id: str, order_number: str, postal_code: str = ""
) -> Claim:
    """A member claims a marketplace order. Checked in full before anything is stored; the
    verification runs after the commit (a task, with the claim's id only)."""
    if member.status == MemberStatus.BLOCKED:
        raise errors.MemberBlocked("Your membership is blocked, so you cannot claim orders.")
    channel = _channel_for(member, channel_public_id)
    number = clean_order_number(channel.kind, order_number)
    postal = (postal_code or "").strip()
    if postal and not _POSTAL.match(postal):
        raise errors.InvalidInput(
            "That postal code looks wrong — letters, digits, spaces and hyphens only.",
            field="postal_code",
        )
    try:
        with transaction.atomic():
            # One member's submissions queue here, so the daily limit holds under concurrency.
            loyalty_services.lock_member(member.pk)
            since = timezone.now() - timedelta(days=1)
            if Claim.objects.filter(member=member, created_at__gte=since).count() >= DAILY_LIMIT:
                raise TooManyClaims(
                    f"You can claim at most {DAILY_LIMIT} orders a day — please try tomorrow."
                )
            existing = Claim.objects.filter(
                team_id=member.team_id,
                channel=channel,
                order_number=number,
                status__in=ACTIVE_STATUSES,
            ).first()
            if existing is not None or _already_claimed(channel, number):
                raise _already(existing, member)
            claim = Claim(
                team_id=member.team_id,
                member=member,
                channel=channel,
                order_number=number,
                postal_match="given" if postal else "not_given",
            )
            if postal:
                claim.sealed_postal_code = vault.seal(postal, context=postal_context(claim))
            with transaction.atomic():
                claim.save()
            _record(claim, S.SUBMITTED, S.SUBMITTED, None, "submitted by the member")
            transaction.on_commit(lambda: _enqueue(claim.pk))
    except IntegrityError:
        # A concurrent submission of the same order won the unique index.
        existing = Claim.objects.filter(
            team_id=member.team_id,
            channel=channel,
            order_number=number,
            status__in=ACTIVE_STATUSES,
        ).first()
        raise _already(existing, member) from None
    return claim


def _already(existing: Claim | None, member: Member) -> AlreadyClaimed:
    if existing is not None and existing.member_id == member.pk:
        return AlreadyClaimed("You have already claimed this order — see its status below.")
    return AlreadyClaimed("This order has already been claimed.", field="order_number")


def _enqueue(claim_pk: int) -> None:
    from .tasks import verify_claim

    verify_claim.delay(claim_pk)


# --- review ------------------------------------------------------------------------------------


def can_review(user, team) -> bool:
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    return TeamMembership.objects.filter(
        team=team, user=user, role__in=[Role.REVIEWER, *ADMIN_ROLES]
    ).exists()


def _check_reviewer(claim: Claim, reviewer) -> None:
    if not can_review(reviewer, claim.team):
        raise NotAllowed("Only the team's reviewers and admins may review its claims.")


def claim_approve(*, claim: Claim, reviewer, reason: str = "") -> Claim:
    """A reviewer approves: pending_review → approved → award through the ledger → awarded, in
    one transaction. The award key (``amazon-order:<id>``) makes the order earn once, whoever
    claims it."""
    _check_reviewer(claim, reviewer)
    return _approve_and_award(
        claim=claim,
        actor=reviewer,
        reason=reason or "approved",
        reviewed_by=reviewer,
        reviewed_at=timezone.now(),
    )


def claim_approve_by_policy(*, claim: Claim, version: int, results: list[dict]) -> Claim:
    """The team's auto-approval policy approves a claim that passed every rule: the same path
    as a person's approval, with no actor and no reviewer, and the policy's verdict recorded.

    Only ``claims.policy.apply_policy`` calls this, after evaluating the rules under the
    member's lock."""
    return _approve_and_award(
        claim=claim,
        actor=None,
        reason=f"approved by policy v{version}",
        reviewed_by=None,
        reviewed_at=timezone.now(),
        approved_by_policy=True,
        policy_version=version,
        policy_results=results,
    )


def _approve_and_award(*, claim: Claim, actor, reason: str, **fields) -> Claim:
    """The one approval path (a reviewer's and the policy's). Callers check who may approve.

    ``fields`` are saved with the approved transition (who reviewed, the policy's verdict)."""
    with transaction.atomic():
        # Member first, then the claim — the order the ledger takes its locks in — so a
        # reviewer and the policy approving at once queue instead of deadlocking.
        loyalty_services.lock_member(claim.member_id)
        locked = (
            Claim.objects.select_for_update(of=("self",))
            .select_related("member", "verified_order", "channel")
            .get(pk=claim.pk)
        )
        check_transition(locked.status, S.APPROVED)
        order = locked.verified_order
        if order is None or order.total is None:
            raise errors.InvalidInput("This claim has no verified order total to award points for.")
        if (
            Claim.objects.filter(verified_order=order, status__in=CLAIMED_STATUSES)
            .exclude(pk=locked.pk)
            .exists()
        ):
            raise AlreadyClaimed("This order has already earned points on another claim.")
        locked = claim_transition(claim=locked, to=S.APPROVED, actor=actor, reason=reason, **fields)
        kind = locked.channel.kind
        result = loyalty_services.points_award(
            member=locked.member,
            key=award_key(kind, order.order_id),
            source=kind,
            amount=order.total,
            currency=order.currency,
            description=f"{Kind(kind).label} order {order.order_id}",
        )
        granted_to = (result.entry or result.held or result.pending).member_id
        if not result.created and granted_to != locked.member_id:
            raise AlreadyClaimed("This order has already earned points for someone else.")
        points = result.points + sum(
            h.points or 0 for h in (result.held, result.pending) if h is not None
        )
        locked = claim_transition(
            claim=locked,
            to=S.AWARDED,
            actor=actor,
            reason=f"+{points} points",
            points_awarded=points,
            ledger_entry=result.entry,
        )
    claim.__dict__.update({k: v for k, v in locked.__dict__.items() if not k.startswith("_")})
    return locked


def claim_reject(*, claim: Claim, reviewer, reason: str) -> Claim:
    """A reviewer turns a claim down; the member sees the reason."""
    _check_reviewer(claim, reviewer)
    reason = (reason or "").strip()
    if not reason:
        raise errors.InvalidInput("Give a reason: the member will see it.", field="reason")
    return claim_transition(
        claim=claim,
        to=S.REJECTED,
        actor=reviewer,
        reason=reason,
        reviewed_by=reviewer,
        reviewed_at=timezone.now(),
        sealed_postal_code="",
    )


# --- words for members ------------------------------------------------------------------------


def status_words(claim: Claim) -> str:
    """The claim's status in plain words, with what happens next."""
    platform = Kind(claim.channel.kind).label if claim.channel_id else "the marketplace"
    status = claim.status
    if status in (S.SUBMITTED, S.VERIFYING):
        return f"checking with {platform}"
    if status == S.RETRYING:
        return f"{platform} is busy — we will try again shortly"
    if status == S.PENDING_REVIEW:
        if claim.points_preview:
            return f"waiting for review · worth about {claim.points_preview} points"
        return "waiting for review"
    if status == S.APPROVED:
        return "approved · adding your points"
    if status == S.AWARDED:
        words = f"approved · +{claim.points_awarded or 0} points"
        if claim.points_reversed:
            words += f" · {claim.points_reversed} reversed: order partly refunded"
        return words
    if status == S.REVERSED:
        return f"reversed: {claim.status_reason or 'order refunded'}"
    if status == S.NOT_FOUND:
        return f"not found: {platform} has no such order for this shop — check the number"
    if status in (S.REJECTED, S.INELIGIBLE):
        return f"rejected: {claim.status_reason or 'not eligible'}"
    return str(status)


def rollout_set(*, channel: Channel, stage: str, claim_window_days: int | None = None) -> Rollout:
    """Set the graylaunch stage of order claims for one channel of its team."""
    if stage not in Stage.values:
        raise errors.InvalidInput("The stage is off, staff or on.", field="stage")
    if channel.kind not in CLAIM_KINDS:
        raise errors.InvalidInput("Order claims are for Amazon and TikTok Shop channels only.")
    defaults = {"stage": stage}
    if claim_window_days is not None:
        if claim_window_days < 1:
            raise errors.InvalidInput("The claim window is at least one day.")
        defaults["claim_window_days"] = claim_window_days
    rollout, _ = Rollout.objects.update_or_create(
        team_id=channel.team_id, channel=channel, defaults=defaults
    )
    return rollout
