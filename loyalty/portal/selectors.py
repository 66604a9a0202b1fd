"""Reads for the portal. Every query is scoped to the member (and so to their team)."""

from django.db.models import QuerySet, Sum

from ..models import Coupon, HeldAward, HoldStatus, LedgerEntry, Member, Reward, Team


def member_entries(*, member: Member) -> QuerySet[LedgerEntry]:
    # id breaks ties between entries written in the same instant, so pages never overlap.
    return LedgerEntry.objects.filter(team_id=member.team_id, member=member).order_by(
        "-created_at", "-id"
    )


def member_pending(*, member: Member) -> dict:
    """Held awards the member is waiting for: shown as pending, never as spendable."""
    holds = HeldAward.objects.filter(
        team_id=member.team_id, member=member, status=HoldStatus.HELD
    ).order_by("-created_at")
    return {
        "holds": list(holds),
        "points": holds.aggregate(s=Sum("points"))["s"] or 0,
    }


def member_coupons(*, member: Member) -> QuerySet[Coupon]:
    return (
        Coupon.objects.filter(team_id=member.team_id, member=member)
        .select_related("reward")
        .order_by("-created_at", "-id")
    )


def team_rewards(*, team: Team) -> QuerySet[Reward]:
    return Reward.objects.filter(team=team, active=True).order_by("points_cost", "name")
