"""Reads for the console. Each takes the team it reads from; nothing here crosses teams."""

from __future__ import annotations

from datetime import date, timedelta

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from ..models import (
    EntryKind,
    HeldAward,
    HoldStatus,
    LedgerEntry,
    Member,
    Source,
    Team,
    UnrecoveredPoints,
)


def dashboard_stats(*, team: Team) -> dict:
    entries = LedgerEntry.objects.filter(team=team).aggregate(
        issued=Sum("points", filter=Q(points__gt=0)),
        redeemed=Sum("points", filter=Q(kind=EntryKind.REDEEM)),
    )
    return {
        "members": Member.objects.filter(team=team).count(),
        "issued": entries["issued"] or 0,
        "redeemed": -(entries["redeemed"] or 0),
        "held": HeldAward.objects.filter(team=team, status=HoldStatus.HELD).count(),
        "unrecovered": unrecovered_total(team=team),
    }


def points_by_source(*, team: Team, days: int = 30) -> dict:
    """Points issued per day and source channel over the last ``days`` days (today included),
    with every day present, so the chart has no gaps where nothing happened."""
    tz = timezone.get_current_timezone()
    today = timezone.localdate()
    first = today - timedelta(days=days - 1)
    rows = (
        LedgerEntry.objects.filter(team=team, points__gt=0, created_at__date__gte=first)
        .annotate(day=TruncDate("created_at", tzinfo=tz))
        .values("day", "source")
        .annotate(points=Sum("points"))
    )
    by_day: dict[date, dict[str, int]] = {first + timedelta(n): {} for n in range(days)}
    totals: dict[str, int] = {}
    for row in rows:
        if row["day"] in by_day:
            by_day[row["day"]][row["source"]] = row["points"]
            totals[row["source"]] = totals.get(row["source"], 0) + row["points"]
    # Channels keep the order of Source so their colours never swap between visits.
    sources = [s for s in Source.values if s in totals]
    return {
        "days": sorted(by_day.items()),
        "sources": sources,
        "totals": [(s, Source(s).label, totals[s]) for s in sources],
    }


def member_search(*, team: Team, query: str = "") -> QuerySet[Member]:
    members = Member.objects.filter(team=team).select_related("tier")
    query = query.strip()
    if query:
        match = Q(email__icontains=query) | Q(name__icontains=query)
        if query.lower().startswith("mem_"):
            match |= Q(public_id__startswith=query.lower())
        members = members.filter(match)
    return members.order_by("-enrolled_at", "-id")


def member_entries(*, member: Member) -> QuerySet[LedgerEntry]:
    return LedgerEntry.objects.filter(team_id=member.team_id, member=member).order_by(
        "-created_at", "-id"
    )


def team_holds(*, team: Team, status: str = HoldStatus.HELD) -> QuerySet[HeldAward]:
    return (
        HeldAward.objects.filter(team=team, status=status)
        .select_related("member", "resolved_by")
        .order_by("-created_at", "-id")
    )


def hold_counts(*, team: Team) -> dict[str, int]:
    rows = HeldAward.objects.filter(team=team).values("status").annotate(n=Count("id"))
    counts = {s: 0 for s in HoldStatus.values}
    counts.update({r["status"]: r["n"] for r in rows})
    return counts


def team_unrecovered(*, team: Team) -> QuerySet[UnrecoveredPoints]:
    return (
        UnrecoveredPoints.objects.filter(team=team)
        .select_related("member", "reverses", "entry")
        .order_by("-created_at", "-id")
    )


def unrecovered_total(*, team: Team) -> int:
    return UnrecoveredPoints.objects.filter(team=team).aggregate(s=Sum("points"))["s"] or 0
