"""Periodic channel upkeep: renew short-lived tokens ahead of expiry, re-check connections,
sync Shopify catalogs.

Tasks take channel ids only — never a secret, never a payload."""

import logging
from datetime import timedelta

from celery import shared_task
from django.db.models import Q
from django.utils import timezone

from loyalty.errors import LoyaltyError

from . import order_bridge, product_sync, services
from .connectors import connector_for
from .connectors.base import ConnectorError
from .models import Channel, Kind, Status

log = logging.getLogger(__name__)
RENEW_AHEAD = timedelta(hours=2)


@shared_task
def refresh_channel_tokens() -> int:
    """Renew Shopify client-credentials tokens (24 h) and TikTok tokens before they expire."""
    soon = timezone.now() + RENEW_AHEAD
    due = Channel.objects.filter(
        kind__in=[Kind.SHOPIFY, Kind.TIKTOK], status=Status.CONNECTED
    ).filter(Q(token_expires_at__lt=soon) | Q(token_expires_at__isnull=True))
    renewed = 0
    for channel_id in due.values_list("pk", flat=True):
        renewed += refresh_channel_token(channel_id)
    return renewed


def refresh_channel_token(channel_id: int) -> int:
    channel = Channel.objects.get(pk=channel_id)
    try:
        expiry = connector_for(channel).refresh_token()
    except ConnectorError as exc:
        log.warning("token refresh failed for %s: %s", channel.public_id, type(exc).__name__)
        services.channel_mark_failed(channel=channel, message=exc.message, permanent=exc.permanent)
        return 0
    return 1 if expiry is not None else 0  # None: a legacy token that never expires


@shared_task
def recheck_channels() -> dict:
    """Re-verify every saved connection, so a revoked authorization is noticed before a
    member's claim or a paid order runs into it."""
    outcome = {"ok": 0, "failed": 0}
    for channel in Channel.objects.exclude(status=Status.DISCONNECTED):
        try:
            services.channel_ping(channel=channel)
            outcome["ok"] += 1
        except LoyaltyError:
            outcome["failed"] += 1  # recorded on the channel by channel_ping
    return outcome


@shared_task
def sync_products(sync_id: int) -> str:
    """One product sync run (see product_sync.run_sync); queued by product_sync_start."""
    return product_sync.run_sync(sync_id)


@shared_task
def sync_all_shopify() -> int:
    """The periodic Shopify loop: every connected store gets its upkeep turn."""
    product_sync.fail_stale_syncs()
    due = Channel.objects.filter(kind=Kind.SHOPIFY, status=Status.CONNECTED).order_by("pk")
    for channel in due:
        shopify_upkeep(channel)
    return len(due)


def shopify_upkeep(channel: Channel) -> None:
    """One store's turn in the periodic loop — the place to extend it.

    The steps are independent: one that fails records why (on its run or on the channel) and
    must skip neither the next step nor the next store. The order bridge catches the orders a
    webhook missed."""
    steps = (
        ("product sync", lambda: product_sync.product_sync_start(channel=channel)),
        ("order bridge", lambda: order_bridge.bridge_changed_orders(channel)),
    )
    for name, step in steps:
        try:
            step()
        except Exception:
            log.exception("shopify %s failed for %s", name, channel.public_id)
