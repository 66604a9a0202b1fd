"""Member portal views: thin, each scoped to the team in the URL and the signed-in member."""

import segno
from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from .. import errors, selectors, services
from ..models import MemberStatus
from . import auth
from .auth import portal_view
from .forms import EnrollForm, LoginForm, RedeemForm
from .selectors import member_coupons, member_entries, member_pending, team_rewards

PAGE_SIZE = 20


@portal_view(login_required=False)
def enroll(request):
    if request.member:
        return redirect("portal:home", team_slug=request.team.slug)
    form = EnrollForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            member = services.member_enroll(team=request.team, **form.cleaned_data)
        except errors.LoyaltyError as e:
            form.add_error("email" if isinstance(e, errors.AlreadyEnrolled) else None, e.message)
        else:
            auth.login(request, member)
            messages.success(request, f"Welcome to {request.team.name}!")
            return redirect("portal:home", team_slug=request.team.slug)
    return render(request, "portal/enroll.html", {"form": form})


@portal_view(login_required=False)
def login(request):
    if request.member:
        return redirect("portal:home", team_slug=request.team.slug)
    form = LoginForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        member = auth.authenticate(team=request.team, **form.cleaned_data)
        if member is None:
            form.add_error(None, "That e-mail and password do not match. Please try again.")
        elif member.status == MemberStatus.BLOCKED:
            form.add_error(None, f"This membership is blocked. Please contact {request.team.name}.")
        else:
            auth.login(request, member)
            return redirect("portal:home", team_slug=request.team.slug)
    return render(request, "portal/login.html", {"form": form})


@require_POST
@portal_view(login_required=False)
def logout(request):
    auth.logout(request, request.team)
    messages.info(request, "You are signed out.")
    return redirect("portal:login", team_slug=request.team.slug)


@portal_view
def home(request):
    member = request.member
    context = {
        "progress": selectors.tier_progress(member),
        "pending": member_pending(member=member),
        "recent": member_entries(member=member)[:5],
    }
    return render(request, "portal/home.html", context)


@portal_view
def history(request):
    page = Paginator(member_entries(member=request.member), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(request, "portal/history.html", {"page": page})


@portal_view
def card(request):
    return render(request, "portal/card.html", {"qr_svg": _qr_svg(request.member.public_id)})


def _qr_svg(text: str) -> str:
    # Drawn on the server so the card works without JavaScript; the size is left to CSS
    # (viewBox only) so it fills a phone screen. segno escapes the title it embeds.
    qr = segno.make(text, error="m")
    return mark_safe(
        qr.svg_inline(scale=1, border=2, omitsize=True, title=f"Member card {text}", svgclass="qr")
    )


@portal_view
def rewards(request):
    items = [(r, RedeemForm.for_reward(r)) for r in team_rewards(team=request.team)]
    return render(request, "portal/rewards.html", {"items": items})


@require_POST
@portal_view
def redeem(request):
    form = RedeemForm(request.POST)
    reward = None
    if form.is_valid():
        reward = team_rewards(team=request.team).filter(pk=form.cleaned_data["reward"]).first()
    if reward is None:
        messages.error(request, "That reward is not available. Please pick another.")
        return redirect("portal:rewards", team_slug=request.team.slug)
    # The member id in the key keeps one member's nonce from ever naming another's coupon.
    key = f"portal-redeem:{request.member.public_id}:{form.cleaned_data['nonce']}"
    try:
        coupon = services.reward_redeem(member=request.member, reward=reward, key=key)
    except errors.LoyaltyError as e:
        messages.error(request, e.message)
        return redirect("portal:rewards", team_slug=request.team.slug)
    messages.success(request, f"{reward.name}: your coupon code is {coupon.code}.")
    return redirect("portal:coupons", team_slug=request.team.slug)


@portal_view
def coupons(request):
    context = {"coupons": member_coupons(member=request.member), "now": timezone.now()}
    return render(request, "portal/coupons.html", context)
