"""Console → Claims: the graylaunch stage of order claims per marketplace channel, and what is
waiting. Team admins change stages; reviewers see the page."""

from django.contrib import messages
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from channels_app.models import Channel, Status
from loyalty import errors
from loyalty.console.auth import console_view, forbidden

from . import services
from .models import ACTIVE_STATUSES, ClaimStatus, Rollout, Stage
from .services import CLAIM_KINDS


@console_view
def claims_overview(request):
    channels = (
        Channel.objects.filter(team=request.team, kind__in=CLAIM_KINDS)
        .annotate(
            waiting=Count("claims", filter=Q(claims__status__in=ACTIVE_STATUSES)),
            to_review=Count("claims", filter=Q(claims__status=ClaimStatus.PENDING_REVIEW)),
        )
        .order_by("kind", "name")
    )
    stages = dict(Rollout.objects.filter(team=request.team).values_list("channel_id", "stage"))
    rows = [
        (ch, stages.get(ch.pk, Stage.OFF), ch.status == Status.NEEDS_ATTENTION) for ch in channels
    ]
    return render(request, "claims/console.html", {"rows": rows, "stages": Stage.choices})


@require_POST
@console_view
def rollout_change(request, public_id: str):
    channel = Channel.objects.filter(team=request.team, public_id=public_id).first()
    if channel is None:
        raise Http404("No such channel in this team.")
    if not request.is_team_admin:
        return forbidden(request, "Only the team's owner or an admin can change the rollout.")
    try:
        rollout = services.rollout_set(channel=channel, stage=request.POST.get("stage", ""))
    except errors.LoyaltyError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request, f"{channel.name}: order claims are now {rollout.get_stage_display()}."
        )
    return redirect("claims_console:overview")
