"""Team console views: thin, every lookup filtered by ``request.team`` (see auth.py)."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from .. import errors, selectors, services
from ..models import HeldAward, HoldStatus
from . import charts
from .auth import choose_team, console_view, forbidden, require_team_admin
from .forms import HoldReleaseForm, HoldVoidForm, MemberSearchForm, NegativeBalanceForm
from .selectors import (
    dashboard_stats,
    hold_counts,
    member_entries,
    member_search,
    points_by_source,
    team_holds,
    team_unrecovered,
    unrecovered_total,
)

PAGE_SIZE = 25


@console_view
def dashboard(request):
    series = points_by_source(team=request.team)
    context = {
        "stats": dashboard_stats(team=request.team),
        "series": series,
        "chart": charts.stacked_columns(series, title="Points issued by channel, last 30 days"),
        "legend": [(s, label, total, charts.colour(s)) for s, label, total in series["totals"]],
    }
    return render(request, "console/dashboard.html", context)


@console_view
def members(request):
    form = MemberSearchForm(request.GET or None)
    query = form.cleaned_data["q"] if form.is_valid() else ""
    page = Paginator(member_search(team=request.team, query=query), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(request, "console/members.html", {"form": form, "page": page, "q": query})


@console_view
def member_detail(request, public_id: str):
    try:
        member = selectors.member_get(team=request.team, public_id=public_id)
    except errors.NotFound:
        raise Http404("No such member in this team.") from None
    page = Paginator(member_entries(member=member), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "member": member,
        "page": page,
        "progress": selectors.tier_progress(member),
        "holds": team_holds(team=request.team).filter(member=member),
        "coupons": member.coupons.filter(team=request.team).order_by("-created_at")[:10],
    }
    return render(request, "console/member.html", context)


@console_view
def holds(request):
    status = request.GET.get("status", HoldStatus.HELD)
    if status not in HoldStatus.values:
        status = HoldStatus.HELD
    page = Paginator(team_holds(team=request.team, status=status), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    counts = hold_counts(team=request.team)
    context = {
        "page": page,
        "status": status,
        "tabs": [(value, label, counts[value]) for value, label in HoldStatus.choices],
    }
    return render(request, "console/holds.html", context)


def _team_hold(request, hold_id: str) -> HeldAward:
    return get_object_or_404(HeldAward, team=request.team, public_id=hold_id)


@require_POST
@console_view
def hold_release(request, hold_id: str):
    hold = _team_hold(request, hold_id)
    if denied := require_team_admin(request):
        return denied
    form = HoldReleaseForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Points to grant must be a whole number above zero.")
        return redirect("console:holds")
    try:
        entry = services.hold_release(
            hold=hold,
            actor=request.user,
            points=form.cleaned_data["points"],
            note=form.cleaned_data["note"],
        )
    except errors.LoyaltyError as e:
        messages.error(request, f"{hold.public_id}: {e.message}")
    else:
        messages.success(
            request, f"Released {entry.points:,} points to {hold.member.email} ({entry.public_id})."
        )
    return redirect("console:holds")


@require_POST
@console_view
def hold_void(request, hold_id: str):
    hold = _team_hold(request, hold_id)
    if denied := require_team_admin(request):
        return denied
    form = HoldVoidForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    try:
        services.hold_void(hold=hold, actor=request.user, note=note)
    except errors.LoyaltyError as e:
        messages.error(request, f"{hold.public_id}: {e.message}")
    else:
        messages.success(request, f"Voided {hold.public_id}; no points were granted.")
    return redirect("console:holds")


@console_view
def unrecovered(request):
    page = Paginator(team_unrecovered(team=request.team), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    context = {"page": page, "total": unrecovered_total(team=request.team)}
    return render(request, "console/unrecovered.html", context)


@console_view
def team_settings(request):
    team = request.team
    form = NegativeBalanceForm(
        request.POST if request.method == "POST" else None,
        initial={"negative_balance": team.negative_balance},
    )
    if request.method == "POST":
        if not request.is_team_admin:
            return forbidden(request, "Only the team's owner or an admin can change settings.")
        if form.is_valid():
            try:
                services.team_negative_balance_set(
                    team=team, policy=form.cleaned_data["negative_balance"], actor=request.user
                )
            except errors.LoyaltyError as e:
                form.add_error("negative_balance", e.message)
            else:
                messages.success(request, "Settings saved. They apply to refunds from now on.")
                return redirect("console:settings")
    return render(request, "console/settings.html", {"form": form})


@require_POST
@console_view
def switch_team(request):
    team = choose_team(request, request.POST.get("team", ""))
    if team is None:
        messages.error(request, "You are not part of that team.")
    else:
        messages.info(request, f"Now working in {team.name}.")
    # Back to the dashboard: the page the user was on may belong to the team they just left.
    return redirect("console:dashboard")
