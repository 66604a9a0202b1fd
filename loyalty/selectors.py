"""Reads of loyalty data. Every function takes the team it reads from."""

from django.db.models import F, IntegerField, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from . import errors
from .models import LedgerEntry, Member, Team


def member_get(*, team: Team, public_id: str) -> Member:
    member = Member.objects.filter(team=team, public_id=public_id).select_related("tier").first()
    if member is None:
        raise errors.NotFound("Member not found.")
    return member


def ledger_mismatches(*, team_slug: str | None = None) -> list[dict]:
    sums = (
        LedgerEntry.objects.filter(member=OuterRef("pk"))
        .values("member")
        .annotate(s=Sum("points"))
        .values("s")
    )
    qs = Member.objects.annotate(
        ledger_sum=Coalesce(Subquery(sums, output_field=IntegerField()), Value(0))
    ).exclude(balance=F("ledger_sum"))
    if team_slug:
        qs = qs.filter(team__slug=team_slug)
    return list(qs.values("public_id", "team__slug", "balance", "ledger_sum"))


def tier_progress(member: Member) -> dict:
    """The member's tier, the next one and the lifetime points still needed to reach it."""
    nxt = (
        member.team.tiers.filter(threshold__gt=member.lifetime_points).order_by("threshold").first()
    )
    current = member.tier
    return {
        "tier": current,
        "next_tier": nxt,
        "points_to_next": (nxt.threshold - member.lifetime_points) if nxt else 0,
        "percent": (
            100
            if nxt is None
            else int(
                100
                * (member.lifetime_points - (current.threshold if current else 0))
                / max(1, nxt.threshold - (current.threshold if current else 0))
            )
        ),
    }


def purchase_points_preview(member: Member, amount, currency: str) -> int | None:
    """What a purchase would earn this member by the team's formula today (rate × tier
    multiplier), without granting anything; None when the team has no rate for the currency."""
    from decimal import Decimal, InvalidOperation

    from .models import EarningPolicy
    from .services import purchase_points

    if amount is None:
        return None
    try:
        amount = Decimal(str(amount))
    except InvalidOperation:
        return None
    currency = (currency or member.team.currency).strip().upper()
    policy = EarningPolicy.objects.filter(team_id=member.team_id, currency=currency).first()
    if policy is None:
        return None
    multiplier = member.tier.multiplier if member.tier_id else Decimal(1)
    return max(0, purchase_points(amount, policy.rate, multiplier))
