"""Settings → Online Shop: one tabbed card, Shopify · Amazon · TikTok Shop.

Team admins and system admins only; every channel lookup goes through the current team, so
another team's channel id is a 404."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from loyalty import errors
from loyalty.console.auth import console_view, forbidden
from loyalty.models import Plan

from . import product_sync, services
from .forms import channel_form, split
from .models import Channel, Kind, Status, SyncStatus

TABS = [(Kind.SHOPIFY, "Shopify"), (Kind.AMAZON, "Amazon"), (Kind.TIKTOK, "TikTok Shop")]
NOT_ADMIN = "Only the team's owner or an admin can see or change its online shop connections."


def admin_view(view):
    @console_view
    def wrapper(request, *args, **kwargs):
        if not request.is_team_admin:
            return forbidden(request, NOT_ADMIN)
        return view(request, *args, **kwargs)

    wrapper.__name__ = view.__name__
    return wrapper


def _channel(request, public_id: str) -> Channel:
    channel = Channel.objects.filter(team=request.team, public_id=public_id).first()
    if channel is None:
        raise Http404("No such connection in this team.")
    return channel


def _page_url(kind: str) -> str:
    return f"{reverse('channels:online_shop')}?tab={kind}"


def _render(request, kind, form, *, editing=None, status=200):
    context = {
        "tabs": TABS,
        "tab": kind,
        "form": form,
        "editing": editing,
        "channels": product_sync.with_sync_state(
            Channel.objects.filter(team=request.team, kind=kind)
        ),
        "plan_ok": request.team.plan == Plan.OMNICHANNEL,
    }
    return render(request, "channels/online_shop.html", context, status=status)


@admin_view
def online_shop(request):
    kind = request.GET.get("tab", Kind.SHOPIFY)
    if kind not in Kind.values:
        kind = Kind.SHOPIFY
    editing = None
    if edit_id := request.GET.get("edit"):
        editing = _channel(request, edit_id)
        kind = editing.kind
    return _render(request, kind, channel_form(kind, channel=editing), editing=editing)


@require_POST
@admin_view
def save(request, kind: str):
    """Save & Verify: a new connection, or new settings for one (``?edit=ch_…``)."""
    if kind not in Kind.values:
        raise Http404
    editing = _channel(request, request.GET["edit"]) if request.GET.get("edit") else None
    if editing and editing.kind != kind:
        raise Http404
    form = channel_form(kind, request.POST, channel=editing)
    if form.is_valid():
        name, config, secrets = split(form)
        try:
            if editing:
                check = services.channel_update(channel=editing, config=config, secrets=secrets)
            else:
                _, check = services.channel_connect(
                    team=request.team, kind=kind, name=name, config=config, secrets=secrets
                )
        except errors.LoyaltyError as exc:
            if exc.field and exc.field in form.fields:
                form.add_error(exc.field, exc.message)
            else:
                form.add_error(None, exc.message)
        else:
            messages.success(request, f"Verified and saved: {check.summary}")
            return redirect(_page_url(kind))
    # Re-rendered, never redirected with the data: secrets are not echoed (render_value=False).
    return _render(request, kind, form, editing=editing, status=400)


@require_POST
@admin_view
def ping(request, public_id: str):
    channel = _channel(request, public_id)
    try:
        check = services.channel_ping(channel=channel)
    except errors.LoyaltyError as exc:
        messages.error(request, f"{channel.name}: {exc.message}")
    else:
        messages.success(request, f"{channel.name} verified: {check.summary}")
    return redirect(_page_url(channel.kind))


@require_POST
@admin_view
def disconnect(request, public_id: str):
    channel = _channel(request, public_id)
    services.channel_disconnect(channel=channel)
    messages.success(request, f"{channel.name} disconnected; its secrets and synced data are gone.")
    return redirect(_page_url(channel.kind))


@require_POST
@admin_view
def sync(request, public_id: str):
    """Sync Now: start (or join) a product sync and come back to the page, whose progress bar
    follows the run. Without a broker the run happens inside this request."""
    channel = _channel(request, public_id)
    if channel.kind != Kind.SHOPIFY:
        raise Http404
    if channel.status != Status.CONNECTED:
        messages.error(request, f"{channel.name}: re-verify the connection before syncing.")
        return redirect(_page_url(channel.kind))
    run = product_sync.product_sync_start(channel=channel)
    run.refresh_from_db()
    if run.status == SyncStatus.RUNNING:
        messages.info(request, f"Syncing products from {channel.name}…")
    elif run.status == SyncStatus.DONE:
        messages.success(request, f"{channel.name}: {run.done:,} products synced.")
    else:
        messages.error(request, f"{channel.name}: the sync did not finish (see below).")
    return redirect(_page_url(channel.kind))
