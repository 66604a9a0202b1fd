"""The console's JSON endpoints for channels (seed 002), session-authenticated and CSRF-checked.

Errors use the v2 API's shape: {"error": {"code", "message", "field"?}}."""

import json
from functools import wraps

from django.http import JsonResponse
from django.views.decorators.http import require_GET, require_POST

from loyalty import errors
from loyalty.console.auth import current_team
from loyalty.tenancy import is_team_admin, teams_for

from . import product_sync, services
from .models import Channel, Kind, ProductSync, Status


def _error(code: str, message: str, status: int, field: str | None = None) -> JsonResponse:
    body = {"code": code, "message": message}
    if field:
        body["field"] = field
    return JsonResponse({"error": body}, status=status)


def channel_json(ch: Channel) -> dict:
    """A channel as the console sees it: never a secret, at most its last four characters."""
    return {
        "id": ch.public_id,
        "teamId": ch.team.slug,
        "kind": ch.kind,
        "name": ch.name,
        "status": ch.status,
        "config": ch.config,
        "secrets": {
            n: {"saved": True, "endsWith": h or None}
            for n, h in ch.secret_hints.items()
            if not n.startswith("runtime_")
        },
        "lastCheckedAt": ch.last_checked_at.isoformat() if ch.last_checked_at else None,
        "lastCheck": ch.last_check,
        "lastError": ch.last_error or None,
    }


def json_endpoint(view):
    """Signed-in team admins only; the body parsed; domain errors as JSON."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return _error("unauthorized", "Sign in to the console first.", 401)
        body = {}
        if request.method == "POST" and request.body:
            try:
                body = json.loads(request.body)
            except (ValueError, UnicodeDecodeError):
                return _error("malformed_json", "The body is not valid JSON.", 400)
            if not isinstance(body, dict):
                return _error("malformed_json", "The body must be a JSON object.", 400)
        try:
            return view(request, body, *args, **kwargs)
        except errors.LoyaltyError as exc:
            return _error(exc.code, exc.message, exc.status, exc.field)

    return wrapper


def _admin_team(request, slug: str | None = None):
    """The team the request acts for: its slug if given, else the console's current team."""
    teams = teams_for(request.user)
    team = teams.filter(slug=slug).first() if slug else current_team(request, teams)
    if team is None:
        raise errors.NotFound("No such team.")
    if not is_team_admin(request.user, team):
        raise Forbidden("Only the team's owner or an admin can manage its online shops.")
    return team


class Forbidden(errors.LoyaltyError):
    code = "forbidden"
    status = 403


def _dict(body: dict, name: str) -> dict:
    value = body.get(name) or {}
    if not isinstance(value, dict):
        raise errors.InvalidInput(f"{name} must be an object.", field=name)
    return value


# --- /api/admin/channels ---------------------------------------------------------------------


@require_POST
@json_endpoint
def admin_channels(request, body):
    """POST {teamId, kind, name, config, secrets}: Save & Verify a connection."""
    slug = body.get("teamId")
    if not isinstance(slug, str) or not slug:
        raise errors.InvalidInput("teamId (the team's slug) is required.", field="teamId")
    team = _admin_team(request, slug)
    kind = body.get("kind")
    if kind not in Kind.values:
        raise errors.InvalidInput("kind must be shopify, amazon or tiktok.", field="kind")
    channel, check = services.channel_connect(
        team=team,
        kind=kind,
        name=body.get("name") or "",
        config=_dict(body, "config"),
        secrets=_dict(body, "secrets"),
    )
    return JsonResponse({"channel": channel_json(channel), "check": check.summary}, status=201)


@require_POST
@json_endpoint
def admin_channel_ping(request, body, public_id: str):
    channel = (
        Channel.objects.filter(public_id=public_id, team__in=teams_for(request.user))
        .select_related("team")
        .first()
    )
    if channel is None:
        raise errors.NotFound("No such channel.")
    _admin_team(request, channel.team.slug)
    check = services.channel_ping(channel=channel)
    return JsonResponse({"channel": channel_json(channel), "check": check.summary})


# --- /api/shopify/* (the console's current team) ---------------------------------------------


def _shopify(team):
    return Channel.objects.filter(team=team, kind=Kind.SHOPIFY).order_by("created_at").first()


@require_POST
@json_endpoint
def shopify_connect(request, body):
    """POST {shopDomain, accessToken} or {shopDomain, clientId, clientSecret}."""
    team = _admin_team(request)
    config = {"shop_domain": body.get("shopDomain")}
    secrets = {
        "access_token": body.get("accessToken"),
        "client_id": body.get("clientId"),
        "client_secret": body.get("clientSecret"),
    }
    secrets = {k: v for k, v in secrets.items() if v is not None}
    existing = _shopify(team)
    if existing:
        services.channel_update(channel=existing, config=config, secrets=secrets)
        channel = existing
    else:
        channel, _ = services.channel_connect(
            team=team, kind=Kind.SHOPIFY, name="Shopify", config=config, secrets=secrets
        )
    return JsonResponse(_shopify_status(channel))


def _shopify_status(channel) -> dict:
    if channel is None:
        return {"connected": False, "shopDomain": None, "status": "disconnected"}
    state = product_sync.sync_state(channel)
    return {
        "connected": channel.status == "connected",
        "shopDomain": channel.config.get("shop_domain"),
        "shopName": channel.last_check.get("details", {}).get("shop_name"),
        "status": channel.status,
        "lastError": channel.last_error or None,
        "apiVersion": channel.config.get("api_version", "2026-10"),
        "lastSyncedAt": _iso(state.last_synced_at),
        "productCount": state.product_count,
        "sync": product_sync.sync_json(state.sync),
    }


def _iso(value):
    return value.isoformat() if value else None


@require_GET
@json_endpoint
def shopify_status(request, body):
    return JsonResponse(_shopify_status(_shopify(_admin_team(request))))


@require_POST
@json_endpoint
def shopify_disconnect(request, body):
    channel = _shopify(_admin_team(request))
    if channel is None:
        raise errors.NotFound("No Shopify store is connected.")
    services.channel_disconnect(channel=channel)
    return JsonResponse({"connected": False})


class NeedsAttention(errors.LoyaltyError):
    code = "needs_attention"
    status = 409


@require_POST
@json_endpoint
def shopify_sync(request, body):
    """POST: pull the product catalog now → 202 with the run to poll (a new one, or the one
    already running)."""
    channel = _shopify(_admin_team(request))
    if channel is None:
        raise errors.NotFound("No Shopify store is connected.")
    if channel.status != Status.CONNECTED:
        raise NeedsAttention(
            f"{channel.last_error or 'The Shopify connection needs attention.'} "
            "Re-verify the connection, then sync again."
        )
    sync = product_sync.product_sync_start(channel=channel)
    sync.refresh_from_db()  # without a broker the run has already happened
    return JsonResponse(
        {
            "syncId": sync.pk,
            "status": sync.status,
            "done": sync.done,
            "total": sync.total,
        },
        status=202,
    )


@require_GET
@json_endpoint
def shopify_sync_progress(request, body, sync_id: int):
    """GET: one run's progress, as the Online Shop page polls it. Another team's run is a 404."""
    team = _admin_team(request)
    sync = (
        ProductSync.objects.filter(pk=sync_id, channel__team=team, channel__kind=Kind.SHOPIFY)
        .select_related("channel")
        .first()
    )
    if sync is None:
        raise errors.NotFound("No such sync in this team.")
    channel = sync.channel
    return JsonResponse(
        {
            **product_sync.sync_json(sync),
            "productCount": channel.products.count(),
            "lastSyncedAt": _iso(channel.last_synced_at),
        },
        headers={"Cache-Control": "no-store"},
    )
