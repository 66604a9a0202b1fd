"""The auto-approval policy: per team and claim channel, off by default.

A team admin may combine rules (each optional); when the channel's newest policy version is on
and a verified claim passes every rule, the policy approves it through the same path as a
person's approval (``services.claim_approve_by_policy``). When a rule fails, the claim waits in
the review queue with each rule's result recorded, so the reviewer sees which one failed. With
no policy, or the newest version off, nothing is evaluated or recorded: every claim waits for a
person, as the product promises.

Decisions, written down once:
- "approved claims" are the member's other claims that are ``awarded`` (a partial refund keeps
  a claim awarded). A ``reversed`` claim (refunded or cancelled after the award) counts neither
  as approved nor as rejected; ``rejected`` ones — by a reviewer, or at verification because
  the order had been claimed already — all count as rejected.
- "per calendar month" is the month in ``settings.TIME_ZONE`` (UTC unless set), counted by the
  decision time (``reviewed_at``) of the member's claims that the policy approved, including
  ones reversed since.
- The amount limit is in the team's currency; an order in another currency fails the rule
  (amounts are never converted).
- Amazon's Orders API does not report delivery, so "order delivered" never passes on Amazon.
- Policy versions are never edited: every change is a new row (who, when, what), and the rows
  are the audit trail. Saving the same rules again writes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from channels_app.models import Channel, Kind
from loyalty import errors
from loyalty import services as loyalty_services
from loyalty.tenancy import is_team_admin

from . import services
from .errors import NotAllowed
from .models import ApprovalPolicy, Claim, ClaimStatus

log = logging.getLogger(__name__)
S = ClaimStatus

# The rule switches and limits of a version, in the order the rules are shown.
RULE_FIELDS = (
    "require_postal_match",
    "max_amount",
    "require_delivered",
    "min_member_days",
    "min_approved_claims",
    "max_per_member_month",
)
FIELDS = ("enabled", *RULE_FIELDS)
MAX_LIMIT = 1_000_000  # days, claims or approvals: anything above is a typo

AMAZON_DELIVERY_NOTE = (
    "Amazon's Orders API does not report delivery, so this rule never passes on Amazon"
)


@dataclass(frozen=True)
class RuleResult:
    rule: str
    label: str
    passed: bool
    detail: str

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class MemberHistory:
    """What the member's other claims say, read once per evaluation."""

    approved: int = 0
    rejected: int = 0
    auto_approved_this_month: int = 0


# --- reading ---------------------------------------------------------------------------------


def current_policy(channel: Channel) -> ApprovalPolicy | None:
    """The version in force: the newest one, or None when the channel never had a policy."""
    return (
        ApprovalPolicy.objects.filter(channel_id=channel.pk)
        .select_related("changed_by")
        .order_by("-version")
        .first()
    )


def has_rules(policy) -> bool:
    return any(_rule_on(policy, name) for name in RULE_FIELDS)


def _is_on(value) -> bool:
    # A switch is on when true; a limit is on when it is set (0 is a limit too).
    return value if isinstance(value, bool) else value is not None


def _rule_on(policy, name: str) -> bool:
    return _is_on(getattr(policy, name))


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


def rule_words(policy, currency: str) -> list[str]:
    """Each rule the version combines, in words ("amount at most 100.00 USD")."""
    words = []
    if policy.require_postal_match:
        words.append("buyer postal code matched")
    if policy.max_amount is not None:
        words.append(f"amount at most {_money(policy.max_amount)} {currency}")
    if policy.require_delivered:
        words.append("order delivered")
    if policy.min_member_days is not None:
        words.append(f"member for at least {policy.min_member_days} days")
    if policy.min_approved_claims is not None:
        n = policy.min_approved_claims
        words.append(f"at least {n} approved claim{'s' if n != 1 else ''}, none rejected")
    if policy.max_per_member_month is not None:
        n = policy.max_per_member_month
        words.append(f"at most {n} auto-approval{'s' if n != 1 else ''} per member a month")
    return words


def changes(previous, policy, currency: str) -> list[str]:
    """What a version changed against the one before it (the audit's "what")."""
    if previous is None:
        rules = rule_words(policy, currency)
        head = "created, on" if policy.enabled else "created, off"
        return [head, *(f"rule: {w}" for w in rules)]
    out = []
    if previous.enabled != policy.enabled:
        out.append("turned on" if policy.enabled else "turned off")
    before = dict(zip(_names(previous), rule_words(previous, currency), strict=True))
    after = dict(zip(_names(policy), rule_words(policy, currency), strict=True))
    for name in RULE_FIELDS:
        if name in after and name not in before:
            out.append(f"added: {after[name]}")
        elif name in before and name not in after:
            out.append(f"removed: {before[name]}")
        elif name in before and before[name] != after[name]:
            out.append(f"changed: {before[name]} → {after[name]}")
    return out or ["no rule changed"]


def _names(policy) -> list[str]:
    return [name for name in RULE_FIELDS if _rule_on(policy, name)]


def summary(claim: Claim) -> str:
    """One line for a reviewer: "approved by policy v3", or the rules that held the claim
    ("Policy v3: amount 250.00 USD is above 100.00 USD"); empty when no policy judged it."""
    if claim.approved_by_policy:
        return f"approved by policy v{claim.policy_version}"
    if claim.policy_version is None:
        return ""
    failed = [r.get("detail", "") for r in claim.policy_results or [] if not r.get("passed")]
    if not failed:
        return f"Policy v{claim.policy_version}: every rule passed"
    return f"Policy v{claim.policy_version}: " + "; ".join(failed)


# --- evaluating ------------------------------------------------------------------------------


def month_start(now: datetime) -> datetime:
    """The first instant of ``now``'s calendar month in settings.TIME_ZONE."""
    local = timezone.localtime(now)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def member_history(claim: Claim, *, now: datetime | None = None) -> MemberHistory:
    now = now or timezone.now()
    counts = (
        Claim.objects.filter(member_id=claim.member_id)
        .exclude(pk=claim.pk)
        .aggregate(
            approved=Count("pk", filter=Q(status=S.AWARDED)),
            rejected=Count("pk", filter=Q(status=S.REJECTED)),
            auto=Count("pk", filter=Q(approved_by_policy=True, reviewed_at__gte=month_start(now))),
        )
    )
    return MemberHistory(counts["approved"], counts["rejected"], counts["auto"])


def evaluate(
    claim: Claim,
    policy: ApprovalPolicy,
    *,
    now: datetime | None = None,
    history: MemberHistory | None = None,
) -> list[RuleResult]:
    """Each rule the version combines, judged alone (no rule depends on another). Writes
    nothing; reads the member's other claims only when a rule needs them (or takes
    ``history``), so the caller decides under which lock that read happens."""
    now = now or timezone.now()
    if history is None and (
        policy.min_approved_claims is not None or policy.max_per_member_month is not None
    ):
        history = member_history(claim, now=now)
    history = history or MemberHistory()
    order = claim.verified_order
    results = []
    if policy.require_postal_match:
        results.append(_postal(claim))
    if policy.max_amount is not None:
        results.append(_amount(order, policy.max_amount, claim.team.currency))
    if policy.require_delivered:
        results.append(_delivered(claim, order))
    if policy.min_member_days is not None:
        results.append(_member_days(claim, policy.min_member_days, now))
    if policy.min_approved_claims is not None:
        results.append(_approved_claims(history, policy.min_approved_claims))
    if policy.max_per_member_month is not None:
        results.append(_per_month(history, policy.max_per_member_month))
    return results


def decide(policy: ApprovalPolicy | None, results: list[RuleResult]) -> bool:
    """Approve without a person? Only with a version that is on, has at least one rule, and
    every rule passed. Anything else — no policy, off, no rule — leaves it to a person."""
    if policy is None or not policy.enabled or not has_rules(policy):
        return False
    return bool(results) and all(r.passed for r in results)


def _postal(claim: Claim) -> RuleResult:
    match = claim.postal_match
    detail = {
        "match": "buyer postal code matched",
        "no_match": "buyer postal code does not match",
        "not_given": "the member gave no postal code",
        "unavailable": "the marketplace did not return the buyer's postal code",
    }.get(match, f"buyer postal code: {match.replace('_', ' ')}")
    return RuleResult("postal_match", "Buyer postal code matched", match == "match", detail)


def _amount(order, limit: Decimal, currency: str) -> RuleResult:
    label = f"Order amount at most {_money(limit)} {currency}"
    if order is None or order.total is None:
        return RuleResult("max_amount", label, False, "no verified order total")
    if (order.currency or "").upper() != currency.upper():
        return RuleResult(
            "max_amount",
            label,
            False,
            f"order is in {order.currency or 'an unknown currency'}, the limit is in "
            f"{currency}: amounts are never converted",
        )
    amount = f"{_money(order.total)} {order.currency}"
    if order.total > limit:
        return RuleResult(
            "max_amount", label, False, f"amount {amount} is above {_money(limit)} {currency}"
        )
    return RuleResult(
        "max_amount", label, True, f"amount {amount} is within {_money(limit)} {currency}"
    )


def _delivered(claim: Claim, order) -> RuleResult:
    label = "Order delivered"
    if claim.channel.kind == Kind.AMAZON:
        return RuleResult("delivered", label, False, AMAZON_DELIVERY_NOTE)
    if order is None:
        return RuleResult("delivered", label, False, "no verified order")
    platform = Kind(claim.channel.kind).label
    status = order.status or "unknown"
    if order.delivered:
        return RuleResult("delivered", label, True, f"delivered ({platform} status {status})")
    return RuleResult("delivered", label, False, f"not delivered yet ({platform} status {status})")


def _member_days(claim: Claim, days: int, now: datetime) -> RuleResult:
    label = f"Member for at least {days} days"
    age = max(0, (now - claim.member.enrolled_at).days)
    unit = "day" if age == 1 else "days"
    if age >= days:
        return RuleResult("member_days", label, True, f"member for {age} {unit}")
    return RuleResult("member_days", label, False, f"member for {age} {unit}, fewer than {days}")


def _approved_claims(history: MemberHistory, needed: int) -> RuleResult:
    label = f"At least {needed} approved claims, none rejected"
    approved = f"{history.approved} approved claim{'s' if history.approved != 1 else ''}"
    if history.rejected:
        n = history.rejected
        return RuleResult(
            "approved_claims",
            label,
            False,
            f"member has {n} rejected claim{'s' if n != 1 else ''} (and {approved})",
        )
    if history.approved < needed:
        return RuleResult(
            "approved_claims", label, False, f"member has {approved}, fewer than {needed}"
        )
    return RuleResult("approved_claims", label, True, f"member has {approved}, none rejected")


def _per_month(history: MemberHistory, most: int) -> RuleResult:
    label = f"At most {most} auto-approvals per member a month"
    done = history.auto_approved_this_month
    had = f"{done} auto-approval{'s' if done != 1 else ''} this month"
    if done >= most:
        return RuleResult("per_month", label, False, f"member already had {had} (at most {most})")
    return RuleResult("per_month", label, True, f"member had {had} (at most {most})")


# --- applying --------------------------------------------------------------------------------


def apply_policy(claim: Claim) -> Claim:
    """Judge a claim that has just reached pending_review (called by verification after that
    transaction committed). Returns the claim as it is afterwards."""
    policy = current_policy(claim.channel)
    if policy is None or not policy.enabled:
        return claim  # 100% human review: nothing evaluated, nothing recorded
    results: list[RuleResult] = []
    try:
        with transaction.atomic():
            # The member's lock serializes the policy's decisions for one member: two of their
            # claims verified at once would otherwise both count M-1 auto-approvals this month
            # and both be approved. Member first, then the claim, as every approval does.
            loyalty_services.lock_member(claim.member_id)
            locked = (
                Claim.objects.select_for_update(of=("self",))
                .select_related("member", "team", "channel", "verified_order")
                .get(pk=claim.pk)
            )
            if locked.status != S.PENDING_REVIEW:
                return locked  # a reviewer was faster
            policy = current_policy(claim.channel)  # re-read: the version in force now
            if policy is None or not policy.enabled:
                return locked
            results = evaluate(locked, policy)
            verdict = [r.as_dict() for r in results]
            if decide(policy, results):
                done = services.claim_approve_by_policy(
                    claim=locked, version=policy.version, results=verdict
                )
                log.info("claim %s: approved by policy v%s", locked.public_id, policy.version)
                return done
            Claim.objects.filter(pk=locked.pk).update(
                policy_version=policy.version, policy_results=verdict, updated_at=timezone.now()
            )
            log.info("claim %s: held for review by policy v%s", locked.public_id, policy.version)
    except errors.LoyaltyError as exc:
        # Every rule passed but the award was refused (the member is blocked, the order earned
        # on another claim): a person decides, and sees why the policy did not.
        log.warning("claim %s: policy approval refused (%s)", claim.public_id, exc.code)
        verdict = [
            *(r.as_dict() for r in results),
            RuleResult(
                "award", "Award", False, f"not approved automatically: {exc.message}"
            ).as_dict(),
        ]
        Claim.objects.filter(pk=claim.pk, status=S.PENDING_REVIEW).update(
            policy_version=policy.version, policy_results=verdict, updated_at=timezone.now()
        )
    return Claim.objects.get(pk=claim.pk)


# --- changing --------------------------------------------------------------------------------


def _as_bool(value, name: str) -> bool:
    if isinstance(value, bool):
        return value
    raise errors.InvalidInput(f"{name} is on or off.", field=name)


def _as_count(value, name: str, words: str, least: int = 1) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise errors.InvalidInput(f"{words} is a whole number.", field=name)
    try:
        number = int(str(value).strip())
    except ValueError:
        raise errors.InvalidInput(f"{words} is a whole number.", field=name) from None
    if number < least or number > MAX_LIMIT:
        raise errors.InvalidInput(
            f"{words} is a whole number from {least} to {MAX_LIMIT:,}.", field=name
        )
    return number


def _as_amount(value) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise errors.InvalidInput("The amount limit is a number.", field="max_amount")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise errors.InvalidInput(
            "The amount limit is a number, such as 100 or 99.50.", field="max_amount"
        ) from None
    if not amount.is_finite() or amount <= 0 or amount >= Decimal("1e12"):
        raise errors.InvalidInput(
            "The amount limit is more than 0 and less than a trillion.", field="max_amount"
        )
    if amount != amount.quantize(Decimal("0.01")):
        raise errors.InvalidInput("The amount limit has at most two decimals.", field="max_amount")
    return amount.quantize(Decimal("0.01"))


def clean_rules(rules: dict) -> dict:
    """Validate a version's switches and limits; raises InvalidInput naming the field."""
    unknown = set(rules) - set(FIELDS)
    if unknown:
        raise errors.InvalidInput(f"Unknown policy setting: {', '.join(sorted(unknown))}.")
    out = {}
    for name in ("enabled", "require_postal_match", "require_delivered"):
        if name in rules:
            out[name] = _as_bool(rules[name], name)
    if "max_amount" in rules:
        out["max_amount"] = _as_amount(rules["max_amount"])
    counts = {
        "min_member_days": ("Days since joining", 1),
        "min_approved_claims": ("Approved claims", 1),
        "max_per_member_month": ("Auto-approvals a month", 1),
    }
    for name, (words, least) in counts.items():
        if name in rules:
            out[name] = _as_count(rules[name], name, words, least)
    return out


def policy_change(*, channel: Channel, actor, note: str = "", **rules) -> ApprovalPolicy:
    """Write the channel's next policy version. Settings not given keep their current value.

    Team admins only. Turning the policy on with no rule is refused. When nothing differs from
    the version in force, nothing is written and that version is returned."""
    if actor is None or not getattr(actor, "is_authenticated", False) or not actor.is_active:
        raise NotAllowed("Only the team's owner or an admin can change the auto-approval policy.")
    if not is_team_admin(actor, channel.team):
        raise NotAllowed("Only the team's owner or an admin can change the auto-approval policy.")
    if channel.kind not in services.CLAIM_KINDS:
        raise errors.InvalidInput("Auto-approval is for Amazon and TikTok Shop channels only.")
    cleaned = clean_rules(rules)
    try:
        with transaction.atomic():
            # The channel's row is the lock for its versions: two admins saving at once queue
            # here and get versions n+1 and n+2 (the unique (channel, version) backs it up).
            Channel.objects.select_for_update().filter(pk=channel.pk).values_list(
                "pk", flat=True
            ).first()
            current = current_policy(channel)
            values = {name: getattr(current, name) if current else None for name in FIELDS}
            for name in ("enabled", "require_postal_match", "require_delivered"):
                values[name] = bool(values[name])
            values.update(cleaned)
            if values["enabled"] and not _any_rule(values):
                raise errors.InvalidInput(
                    "Choose at least one rule before turning auto-approval on: with no rule, "
                    "every verified claim would be approved without a person.",
                    field="enabled",
                )
            if current is not None and all(getattr(current, n) == values[n] for n in FIELDS):
                return current
            if current is None and not values["enabled"] and not _any_rule(values):
                # Nothing to record: "off with no rule" is what no policy already means.
                raise errors.InvalidInput(
                    "Nothing to save: the policy is off and has no rule.", field="enabled"
                )
            return ApprovalPolicy.objects.create(
                team_id=channel.team_id,
                channel=channel,
                version=(current.version + 1) if current else 1,
                changed_by=actor,
                note=(note or "").strip()[:300],
                **values,
            )
    except IntegrityError:
        # Only reachable if the lock above were bypassed; never write a duplicate version.
        raise errors.InvalidInput(
            "Someone else saved the policy at the same moment; reload and try again."
        ) from None


def _any_rule(values: dict) -> bool:
    return any(_is_on(values[name]) for name in RULE_FIELDS)
