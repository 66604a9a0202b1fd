"""Channel services: connect (Save & Verify), re-verify, disconnect.

A connection is saved only when the live check against the platform succeeded; a failed check
saves nothing and leaves any earlier working credentials exactly as they were."""

from __future__ import annotations

import logging
import re

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils import timezone

from loyalty import errors
from loyalty.models import Plan, Team

from .connectors import connector_class, connector_for
from .connectors.base import ConnectionCheck, ConnectorError
from .models import Channel, Kind, Status

log = logging.getLogger(__name__)

# Format checks that catch a paste into the wrong box before a platform round-trip.
FIELD_RULES = {
    ("shopify", "shop_domain"): (
        r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$",
        "Enter the store's myshopify.com domain, such as my-store.myshopify.com.",
    ),
    ("shopify", "access_token"): (
        r"^shpat_[A-Za-z0-9]{16,}$",
        "An Admin API access token starts with shpat_ (Settings → Apps → Develop apps).",
    ),
    ("amazon", "client_id"): (
        r"^amzn1\.application-oa2-client\.[A-Za-z0-9]+$",
        "The LWA client id looks like amzn1.application-oa2-client.….",
    ),
    ("amazon", "refresh_token"): (
        r"^Atzr\|[A-Za-z0-9_\-|=+/]+$",
        "An LWA refresh token starts with Atzr| (Seller Central → Apps → Authorize).",
    ),
    ("amazon", "region"): (r"^(na|eu|fe)$", "Region is na, eu or fe."),
    ("tiktok", "app_key"): (r"^[A-Za-z0-9]{6,64}$", "The app key is letters and digits."),
}
URL_FIELDS = {"api_base", "auth_base", "endpoint", "lwa_url"}
MARKETPLACE_ID = re.compile(r"^[A-Z0-9]{10,14}$")


class PlanRequired(errors.LoyaltyError):
    code = "plan_required"
    status = 403


class CheckFailed(errors.LoyaltyError):
    code = "check_failed"
    status = 422
    permanent = True  # False when the platform was only unreachable or busy


def _clean_config(kind: str, config: dict, existing: dict | None) -> dict:
    cls = connector_class(kind)
    clean = dict(existing or {})
    for f in cls.config_fields:
        raw = config.get(f.name, clean.get(f.name, ""))
        if f.name == "marketplace_ids":
            clean[f.name] = _marketplace_ids(raw, required=f.required)
            continue
        value = (raw or "").strip() if isinstance(raw, str) else raw
        if value in ("", None):
            if f.required:
                raise errors.InvalidInput(f"{f.label} is required.", field=f.name)
            clean.pop(f.name, None)
            continue
        if not isinstance(value, str):
            raise errors.InvalidInput(f"{f.label} must be text.", field=f.name)
        _check_rule(kind, f.name, value)
        if f.name in URL_FIELDS and not re.match(r"^https?://[^\s/]+(/\S*)?$", value):
            raise errors.InvalidInput(f"{f.label} must be an http(s) URL.", field=f.name)
        clean[f.name] = value.rstrip("/") if f.name in URL_FIELDS else value
    return clean


def _marketplace_ids(raw, *, required: bool) -> list[str]:
    items = raw.replace(",", " ").split() if isinstance(raw, str) else list(raw or [])
    if required and not items:
        raise errors.InvalidInput("Give at least one marketplace id.", field="marketplace_ids")
    for item in items:
        if not isinstance(item, str) or not MARKETPLACE_ID.match(item):
            raise errors.InvalidInput(
                f"'{item}' is not a marketplace id (such as ATVPDKIKX0DER).",
                field="marketplace_ids",
            )
    return items


def _check_rule(kind: str, name: str, value: str) -> None:
    rule = FIELD_RULES.get((kind, name))
    if rule and not re.match(rule[0], value):
        raise errors.InvalidInput(rule[1], field=name)


def _clean_secrets(kind: str, secrets: dict, *, creating: bool) -> dict[str, str]:
    """Trim what a paste adds at the ends; refuse spaces or line breaks inside a secret."""
    cls = connector_class(kind)
    clean = {}
    for f in cls.secret_fields:
        value = secrets.get(f.name)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue  # blank on an update keeps the saved secret
        if not isinstance(value, str):
            raise errors.InvalidInput(f"{f.label} must be text.", field=f.name)
        value = value.strip()
        if any(ch.isspace() for ch in value):
            raise errors.InvalidInput(
                f"{f.label} contains spaces or line breaks — copy it again as one line.",
                field=f.name,
            )
        _check_rule(kind, f.name, value)
        clean[f.name] = value
    if creating:
        missing = [f for f in cls.secret_fields if f.required and f.name not in clean]
        if missing:
            raise errors.InvalidInput(f"{missing[0].label} is required.", field=missing[0].name)
    return clean


def _require_plan(team: Team) -> None:
    if team.plan != Plan.OMNICHANNEL:
        raise PlanRequired(
            "Connecting an online shop needs the Omnichannel plan. Upgrade the team's plan to "
            "connect Shopify, Amazon or TikTok Shop."
        )


def _run_check(channel: Channel) -> ConnectionCheck:
    """The live check, outside any transaction of ours: a connector that rotates a token
    (TikTok) persists the new one itself, and a later rollback here must not undo that."""
    try:
        return connector_for(channel).check()
    except ConnectorError as exc:
        log.info(
            "channel check failed for %s (%s): %s",
            channel.public_id,
            channel.kind,
            type(exc).__name__,
        )
        # A temporary fault's own words speak of retrying later, which a save never does.
        failure = CheckFailed(
            exc.message
            if exc.permanent
            else f"{Kind(channel.kind).label} did not answer properly just now, so nothing was "
            "checked or saved. Try again in a few minutes."
        )
        failure.permanent = exc.permanent
        raise failure from None


def _record(channel: Channel, check: ConnectionCheck) -> None:
    channel.config.update(check.discovered_config)
    channel.status, channel.last_error = Status.CONNECTED, ""
    channel.last_checked_at = timezone.now()
    channel.last_check = {"summary": check.summary, "details": check.details}


WEBHOOK_TOPICS = ("orders/paid", "orders/fulfilled", "orders/cancelled", "refunds/create")


def _subscribe_webhooks(channel: Channel, check: ConnectionCheck) -> None:
    """Shopify: subscribe the order topics to our receiver. A failure here does not undo a
    verified connection (the sync loop still finds paid orders); it is shown on the row."""
    if channel.kind != Kind.SHOPIFY:
        return
    base = settings.PUBLIC_BASE_URL
    if not base:
        check.details["webhooks"] = "not registered: PUBLIC_BASE_URL is not set"
        return
    try:
        done = connector_for(channel).register_webhooks(f"{base}/webhooks/shopify", WEBHOOK_TOPICS)
    except ConnectorError as exc:
        check.details["webhooks"] = f"not registered: {exc.message}"
    else:
        check.details["webhooks"] = f"{len(done)} order topics subscribed"


CHECK_FIELDS = ["config", "status", "last_error", "last_checked_at", "last_check", "updated_at"]


def channel_connect(
    *, team: Team, kind: str, name: str, config: dict, secrets: dict
) -> tuple[Channel, ConnectionCheck]:
    """Save & Verify a new connection: checked first, saved only if the check passed."""
    _require_plan(team)
    if kind not in Kind.values:
        raise errors.InvalidInput("Choose Shopify, Amazon or TikTok Shop.", field="kind")
    name = (name or "").strip() or Kind(kind).label
    if len(name) > 100:
        raise errors.InvalidInput("Keep the name under 100 characters.", field="name")
    taken = errors.InvalidInput(
        f"This team already has a {Kind(kind).label} connection named '{name}'.", field="name"
    )
    # Asked before the check too, so a duplicate name never costs a (rotating) token refresh.
    if Channel.objects.filter(team=team, kind=kind, name=name).exists():
        raise taken
    channel = Channel(team=team, kind=kind, name=name, config=_clean_config(kind, config, None))
    for secret_name, value in _clean_secrets(kind, secrets, creating=True).items():
        channel.set_secret(secret_name, value)
    check = _run_check(channel)  # unsaved: tokens it obtains stay on this object
    _subscribe_webhooks(channel, check)
    _record(channel, check)
    try:
        with transaction.atomic():
            channel.save()
    except IntegrityError:
        raise taken from None
    return channel, check


def channel_update(*, channel: Channel, config: dict, secrets: dict) -> ConnectionCheck:
    """Change a connection's settings or secrets; kept only if the new ones verify."""
    _require_plan(channel.team)
    candidate = Channel.objects.get(pk=channel.pk)
    candidate.config = _clean_config(candidate.kind, config, candidate.config)
    typed = _clean_secrets(candidate.kind, secrets, creating=False)
    for secret_name, value in typed.items():
        candidate.set_secret(secret_name, value)
    before = dict(candidate.sealed_secrets)
    check = _run_check(candidate)
    _subscribe_webhooks(candidate, check)
    with transaction.atomic():
        row = Channel.objects.select_for_update().get(pk=channel.pk)
        row.config = candidate.config
        if "client_secret" in typed and typed["client_secret"] != row.secret("client_secret"):
            # Shopify signs webhooks with the old secret for up to an hour after a rotation.
            if old := row.secret("client_secret"):
                row.set_secret("previous_client_secret", old)
                row.config["client_secret_rotated_at"] = timezone.now().isoformat()
        for secret_name in typed:
            # A secret the check itself replaced (a rotated refresh token) was already
            # persisted by the connector; the typed one is spent and must not be written back.
            if candidate.sealed_secrets[secret_name] == before[secret_name]:
                row.sealed_secrets[secret_name] = candidate.sealed_secrets[secret_name]
                row.secret_hints[secret_name] = candidate.secret_hints[secret_name]
        _record(row, check)
        row.save(update_fields=[*CHECK_FIELDS, "sealed_secrets", "secret_hints"])
    channel.refresh_from_db()
    return check


def channel_ping(*, channel: Channel) -> ConnectionCheck:
    """Re-verify a saved connection and record what happened, success or not."""
    try:
        check = _run_check(channel)
    except CheckFailed as exc:
        channel_mark_failed(channel=channel, message=exc.message, permanent=exc.permanent)
        channel.refresh_from_db()
        raise
    with transaction.atomic():
        row = Channel.objects.select_for_update().get(pk=channel.pk)
        _record(row, check)
        row.save(update_fields=CHECK_FIELDS)
    channel.refresh_from_db()
    return check


def channel_mark_failed(*, channel: Channel, message: str, permanent: bool) -> None:
    """A permanent fault (revoked credentials) needs a person; a temporary one is noted."""
    fields = {"last_error": message[:500], "last_checked_at": timezone.now()}
    if permanent:
        fields["status"] = Status.NEEDS_ATTENTION
    Channel.objects.filter(pk=channel.pk).update(**fields)


def channel_disconnect(*, channel: Channel) -> None:
    """Remove the connection, its sealed secrets and everything synced through it.

    A channel that members' claims refer to stays as a disconnected row without any secret,
    so the claims' history keeps its channel."""
    try:
        with transaction.atomic():
            channel.delete()
    except ProtectedError:
        Channel.objects.filter(pk=channel.pk).update(
            sealed_secrets={},
            secret_hints={},
            token_expires_at=None,
            status=Status.DISCONNECTED,
            last_error="Disconnected by the team.",
        )
