"""Fixtures for the platform emulator: a fresh seeded sandbox served on 127.0.0.1 per test, and
team A's channels pointed at it (registered from conftest.py via pytest_plugins)."""

from __future__ import annotations

import pytest

from channels_app.connectors import amazon as amazon_adapter
from channels_app.models import Channel
from channels_app.sandbox import Sandbox, SandboxServer, seed_demo


@pytest.fixture
def sandbox_server():
    """A seeded Sandbox behind a real HTTP server on a free loopback port."""
    sandbox = Sandbox()
    seed_demo(sandbox)
    amazon_adapter.clear_token_cache()
    server = SandboxServer(sandbox).start()
    yield server
    server.stop()
    amazon_adapter.clear_token_cache()


@pytest.fixture
def sandbox(sandbox_server) -> Sandbox:
    return sandbox_server.sandbox


@pytest.fixture
def demo(sandbox) -> dict:
    """The demo credentials and notable order ids (see channels_app/sandbox/seed.py)."""
    return sandbox.demo


def make_channel(team, kind: str, *, config: dict, secrets: dict, name: str = "") -> Channel:
    channel = Channel(team=team, kind=kind, name=name or kind.title(), config=config)
    for key, value in secrets.items():
        channel.set_secret(key, value)
    channel.save()
    return channel


def amazon_config(server: SandboxServer, creds: dict) -> dict:
    return {
        "client_id": creds["client_id"],
        "region": "na",
        "marketplace_ids": list(creds.get("marketplace_ids") or ["ATVPDKIKX0DER"]),
        "endpoint": f"{server.url}/amazon",
        "lwa_url": f"{server.url}/amazon/auth/o2/token",
    }


def tiktok_config(server: SandboxServer, creds: dict) -> dict:
    return {
        "app_key": creds["app_key"],
        "api_base": f"{server.url}/tiktok",
        "auth_base": f"{server.url}/tiktok-auth",
        "shop_cipher": creds["shop_cipher"],  # as Save & Verify would have discovered
    }


def shopify_config(server: SandboxServer, creds: dict) -> dict:
    return {
        "shop_domain": creds["shop_domain"],
        "api_base": server.shopify_base(creds["shop_domain"]),
        "api_version": "2026-10",
    }


@pytest.fixture
def amazon_channel(team_a, sandbox_server) -> Channel:
    creds = sandbox_server.sandbox.demo["amazon"]
    return make_channel(
        team_a,
        "amazon",
        config=amazon_config(sandbox_server, creds),
        secrets={"client_secret": creds["client_secret"], "refresh_token": creds["refresh_token"]},
    )


@pytest.fixture
def tiktok_channel(team_a, sandbox_server) -> Channel:
    creds = sandbox_server.sandbox.demo["tiktok"]
    return make_channel(
        team_a,
        "tiktok",
        config=tiktok_config(sandbox_server, creds),
        secrets={"app_secret": creds["app_secret"], "refresh_token": creds["refresh_token"]},
    )


@pytest.fixture
def shopify_channel(team_a, sandbox_server) -> Channel:
    """The demo store through a legacy custom app's shpat_ token."""
    creds = sandbox_server.sandbox.demo["shopify"]
    return make_channel(
        team_a,
        "shopify",
        config=shopify_config(sandbox_server, creds),
        secrets={"access_token": creds["access_token"]},
    )
