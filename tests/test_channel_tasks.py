"""Periodic channel upkeep against the emulator: token renewal and connection re-checks."""

from datetime import timedelta

import pytest
from django.utils import timezone

from channels_app import tasks
from channels_app.models import Channel

from .sandbox_fixtures import make_channel, shopify_config

pytestmark = pytest.mark.django_db


def test_tiktok_token_is_renewed_before_it_expires(tiktok_channel, sandbox):
    Channel.objects.filter(pk=tiktok_channel.pk).update(
        token_expires_at=timezone.now() + timedelta(minutes=30)
    )
    before = tiktok_channel.secret("refresh_token")
    sandbox.reset_calls()
    assert tasks.refresh_channel_tokens.delay().get() == 1
    tiktok_channel.refresh_from_db()
    assert sandbox.call_count("tiktok", "refreshToken") == 1
    assert tiktok_channel.secret("refresh_token") != before  # the rotation was persisted
    assert tiktok_channel.token_expires_at > timezone.now() + timedelta(hours=2)
    assert tasks.refresh_channel_tokens() == 0  # fresh now: nothing to do
    assert sandbox.call_count("tiktok", "refreshToken") == 1


def test_shopify_client_credentials_token_is_renewed(team_a, sandbox_server, demo):
    creds = demo["shopify"]
    channel = make_channel(
        team_a,
        "shopify",
        config=shopify_config(sandbox_server, creds),
        secrets={"client_id": creds["client_id"], "client_secret": creds["client_secret"]},
    )
    assert tasks.refresh_channel_tokens() == 1  # no token yet: obtained
    channel.refresh_from_db()
    first = channel.secret("runtime_access_token")
    Channel.objects.filter(pk=channel.pk).update(
        token_expires_at=timezone.now() + timedelta(minutes=10)
    )
    assert tasks.refresh_channel_tokens() == 1
    channel.refresh_from_db()
    assert channel.secret("runtime_access_token") != first


def test_a_legacy_shopify_token_needs_no_renewal(shopify_channel):
    assert tasks.refresh_channel_tokens() == 0


def test_revoked_credentials_found_by_the_recheck_need_attention(
    amazon_channel, tiktok_channel, sandbox
):
    sandbox.set_fault("amazon", "lwaToken", "revoked", times=10)
    assert tasks.recheck_channels.delay().get() == {"ok": 1, "failed": 1}
    amazon_channel.refresh_from_db()
    tiktok_channel.refresh_from_db()
    assert (
        amazon_channel.status == "needs_attention" and "Seller Central" in amazon_channel.last_error
    )
    assert tiktok_channel.status == "connected"


def test_a_failed_refresh_marks_the_channel(tiktok_channel, sandbox):
    Channel.objects.filter(pk=tiktok_channel.pk).update(token_expires_at=timezone.now())
    sandbox.set_fault("tiktok", "refreshToken", "revoked", times=5)
    assert tasks.refresh_channel_tokens() == 0
    tiktok_channel.refresh_from_db()
    assert tiktok_channel.status == "needs_attention" and "authorize" in tiktok_channel.last_error
