"""The Shopify adapter: both ways to connect, catalog paging under the cost throttle, the order
bridge query, webhooks, and faults — against the emulator and with `responses`."""

import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import responses
from django.utils import timezone

from channels_app.connectors import connector_for
from channels_app.connectors.base import (
    BuyerHint,
    BuyerMatch,
    OrderNotFound,
    PermanentError,
    RateLimited,
    TemporaryError,
)
from channels_app.connectors.shopify import ShopifyConnector
from channels_app.models import Channel

from .sandbox_fixtures import make_channel, shopify_config


@pytest.fixture
def shopify(shopify_channel):
    return ShopifyConnector(shopify_channel, timeout=2)


@pytest.fixture
def app_channel(team_a, sandbox_server):
    """The demo store through a Dev Dashboard app: client id + client secret."""
    creds = sandbox_server.sandbox.demo["shopify"]
    return make_channel(
        team_a,
        "shopify",
        name="Shopify app",
        config=shopify_config(sandbox_server, creds),
        secrets={"client_id": creds["client_id"], "client_secret": creds["client_secret"]},
    )


# --- unit: the cost throttle back-off, with responses ---

GRAPHQL = "https://demo-store.myshopify.com/admin/api/2026-10/graphql.json"


def _offline(**secrets) -> ShopifyConnector:
    channel = Channel(kind="shopify", name="s", config={"shop_domain": "demo-store.myshopify.com"})
    channel.set_secret("access_token", "shpat_0123456789abcdef0123")
    adapter = ShopifyConnector(channel, max_throttle_wait=5)
    adapter.slept = []
    adapter._sleep = adapter.slept.append
    return adapter


def _throttled(available: int, requested: int = 52, rate: float = 50.0) -> dict:
    return {
        "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
        "extensions": {
            "cost": {
                "requestedQueryCost": requested,
                "actualQueryCost": None,
                "throttleStatus": {
                    "maximumAvailable": 1000.0,
                    "currentlyAvailable": available,
                    "restoreRate": rate,
                },
            }
        },
    }


@responses.activate
def test_throttled_queries_wait_for_the_bucket_to_refill_then_retry():
    page = {"pageInfo": {"hasNextPage": False, "endCursor": None}, "nodes": [{"id": "gid://1"}]}
    responses.post(GRAPHQL, json=_throttled(available=10))
    responses.post(GRAPHQL, json={"data": {"products": page}})
    adapter = _offline()
    assert [p["id"] for p in adapter.products(page_size=50)] == ["gid://1"]
    assert adapter.slept == [pytest.approx((52 - 10) / 50)]
    assert len(responses.calls) == 2
    assert json.loads(responses.calls[0].request.body)["variables"] == {"first": 50, "after": None}
    assert responses.calls[0].request.headers["X-Shopify-Access-Token"].startswith("shpat_")


@responses.activate
def test_a_long_throttle_becomes_rate_limited_instead_of_blocking():
    responses.post(GRAPHQL, json=_throttled(available=0, requested=500, rate=50))
    with pytest.raises(RateLimited) as exc:
        list(_offline().products())
    assert exc.value.retry_after == 10.0


# --- against the emulator ---

pytestmark_db = pytest.mark.django_db


@pytestmark_db
def test_registry_and_declared_fields(shopify_channel):
    adapter = connector_for(shopify_channel)
    assert isinstance(adapter, ShopifyConnector)
    assert [f.name for f in adapter.config_fields] == ["shop_domain", "api_base", "api_version"]
    assert [f.name for f in adapter.secret_fields] == ["access_token", "client_id", "client_secret"]
    assert not any(f.required for f in adapter.secret_fields)  # one way or the other


@pytestmark_db
def test_check_with_a_legacy_token(shopify):
    check = shopify.check()
    assert check.summary == "Connected to Alpha Coffee Roasters (demo-store.myshopify.com)."
    assert check.details["auth"] == "access token"


@pytestmark_db
def test_client_credentials_token_is_obtained_sealed_and_reused(app_channel, sandbox):
    check = ShopifyConnector(app_channel, timeout=2).check()
    assert check.details == {
        "shop_name": "Alpha Coffee Roasters",
        "shop_domain": "demo-store.myshopify.com",
        "auth": "client credentials",
    }
    stored = Channel.objects.get(pk=app_channel.pk)
    token = stored.secret("runtime_access_token")
    assert token.startswith("shpat_") and token not in json.dumps(stored.sealed_secrets)
    expected = timezone.now() + timedelta(seconds=86399)
    assert abs((stored.token_expires_at - expected).total_seconds()) < 5
    ShopifyConnector(stored, timeout=2).check()
    assert sandbox.call_count("shopify", "accessToken") == 1


@pytestmark_db
def test_refresh_token_renews_ahead_of_expiry(app_channel, sandbox, shopify_channel):
    adapter = ShopifyConnector(app_channel, timeout=2)
    adapter.check()
    before = Channel.objects.get(pk=app_channel.pk)
    expires = adapter.refresh_token()
    after = Channel.objects.get(pk=app_channel.pk)
    assert after.secret("runtime_access_token") != before.secret("runtime_access_token")
    assert expires == after.token_expires_at >= before.token_expires_at
    assert sandbox.call_count("shopify", "accessToken") == 2
    assert ShopifyConnector(shopify_channel).refresh_token() is None  # legacy tokens never expire


@pytestmark_db
def test_an_expired_app_token_is_replaced_once(app_channel, sandbox, demo):
    adapter = ShopifyConnector(app_channel, timeout=2)
    adapter.check()
    sandbox.expire_access_tokens("shopify")  # Shopify ends it before our clock does
    assert adapter.fetch_order(demo["shopify"]["orders"][0])
    assert sandbox.call_count("shopify", "accessToken") == 2


@pytestmark_db
def test_neither_token_nor_app_credentials_is_permanent(shopify_channel):
    del shopify_channel.sealed_secrets["access_token"]
    with pytest.raises(PermanentError) as exc:
        ShopifyConnector(shopify_channel).check()
    assert "client id and client secret" in exc.value.message


@pytestmark_db
def test_products_page_through_the_catalog(shopify, sandbox):
    products = list(shopify.products(page_size=20))
    assert len(products) == 50 and len({p["id"] for p in products}) == 50
    assert set(products[0]) == {"id", "title", "handle", "status", "updatedAt"}
    assert sandbox.call_count("shopify", "products") == 3
    assert shopify.throttle_status["maximumAvailable"] == 2000.0


@pytestmark_db
def test_products_honour_the_cost_throttle(shopify_channel, sandbox, demo):
    # A bucket that pays for one page (cost 2 + 25) at a time and refills in ~0.1 s.
    sandbox.set_shopify_bucket(demo["shopify"]["shop_domain"], maximum=30, restore_rate=300)
    adapter = ShopifyConnector(shopify_channel, timeout=2)
    slept = []
    adapter._sleep = lambda s: (slept.append(s), time.sleep(s))
    assert len(list(adapter.products(page_size=25))) == 50
    assert slept and slept[0] == pytest.approx((27 - 3) / 300, abs=0.02)  # waited, not failed
    assert sandbox.call_count("shopify", "products") == 2
    assert sandbox.throttled_count("shopify", "products") == 0

    # Pages of cost 22 from a bucket of 60 that refills 1 point/s: the third page would wait 6 s.
    sandbox.set_shopify_bucket(demo["shopify"]["shop_domain"], maximum=60, restore_rate=1)
    impatient = ShopifyConnector(shopify_channel, timeout=2, max_throttle_wait=0.5)
    with pytest.raises(RateLimited) as exc:
        list(impatient.products(page_size=20))
    assert exc.value.retry_after == pytest.approx(6, abs=0.1)


@pytestmark_db
def test_changed_orders_carry_refunds_and_cancellations(shopify, sandbox, demo):
    gids = demo["shopify"]["orders"]
    since = datetime.now(UTC) - timedelta(seconds=1)
    sandbox.refund_order("shopify", gids[0], amount="10.00")
    sandbox.cancel_order("shopify", gids[1])
    changed = {o.order_id: o for o in shopify.changed_orders(since)}
    assert set(changed) == {gids[0], gids[1]}
    partial, cancelled = changed[gids[0]], changed[gids[1]]
    assert partial.status == "PARTIALLY_REFUNDED" and partial.refunded_total == Decimal("10.00")
    assert cancelled.cancelled and cancelled.status == "REFUNDED"
    assert cancelled.refunded_total == cancelled.total
    assert partial.marketplace == "demo-store.myshopify.com" and partial.currency == "USD"
    everything = list(shopify.changed_orders(datetime.now(UTC) - timedelta(days=60)))
    assert len(everything) == len(gids)


@pytestmark_db
def test_buyer_email_is_resolved_in_memory_only(shopify, sandbox, demo):
    members = {"ann@example.com": "mem_ann"}
    orders = list(
        shopify.changed_orders(
            datetime.now(UTC) - timedelta(days=60), resolve_buyer=lambda e: members.get(e.lower())
        )
    )
    assert {o.buyer_ref for o in orders} == {"mem_ann", ""}
    assert "@" not in repr(orders)
    order = shopify.fetch_order(
        demo["shopify"]["orders"][0], match=BuyerHint(email="ANN@example.com")
    )
    assert order.buyer_match == BuyerMatch.MATCH and "ann@" not in repr(order)


@pytestmark_db
def test_fetch_order_by_gid_stays_inside_the_store(shopify, demo):
    gid = demo["shopify"]["orders"][0]
    assert shopify.fetch_order(gid).order_id == gid
    assert shopify.fetch_order(gid.rsplit("/", 1)[1]).order_id == gid
    with pytest.raises(OrderNotFound):
        shopify.fetch_order(demo["shopify"]["other"]["order_gid"])  # another store's order
    with pytest.raises(OrderNotFound):
        shopify.fetch_order("#1001")


@pytestmark_db
def test_register_webhooks_records_subscriptions_once(shopify, sandbox, demo):
    url = "https://flash.example/hooks/shopify/ch_1"
    first = shopify.register_webhooks(url, ["orders/paid", "orders/fulfilled", "refunds/create"])
    assert [r["topic"] for r in first] == ["ORDERS_PAID", "ORDERS_FULFILLED", "REFUNDS_CREATE"]
    assert all(r["id"].startswith("gid://shopify/WebhookSubscription/") for r in first)
    again = shopify.register_webhooks(url, ["ORDERS_PAID"])
    assert again == [{"topic": "ORDERS_PAID", "id": None, "existing": True}]
    hooks = sandbox.shopify.shops[demo["shopify"]["shop_domain"]].webhooks
    assert [(h["topic"], h["uri"]) for h in hooks] == [(r["topic"], url) for r in first]


@pytestmark_db
def test_429_is_rate_limited_with_retry_after_then_works(shopify, sandbox):
    sandbox.set_fault("shopify", "shop", "429", times=1, retry_after=1.5)
    with pytest.raises(RateLimited) as exc:
        shopify.check()
    assert exc.value.retry_after == 1.5
    assert shopify.check()


@pytestmark_db
@pytest.mark.parametrize("mode", ["500", "non_json_500"])
def test_server_errors_are_temporary(shopify, sandbox, mode):
    sandbox.set_fault("shopify", "products", mode, times=1)
    with pytest.raises(TemporaryError):
        list(shopify.products())
    assert len(list(shopify.products())) == 50


@pytestmark_db
def test_timeouts_are_temporary(shopify_channel, sandbox):
    sandbox.set_fault("shopify", "shop", "slow", seconds=0.6, times=1)
    with pytest.raises(TemporaryError) as exc:
        ShopifyConnector(shopify_channel, timeout=0.2).check()
    assert "0.2 s" in exc.value.message


@pytestmark_db
def test_revoked_legacy_token_is_permanent(shopify, sandbox):
    sandbox.set_fault("shopify", "*", "revoked")
    with pytest.raises(PermanentError) as exc:
        shopify.check()
    assert "revoked or the app was uninstalled" in exc.value.message


@pytestmark_db
def test_revoked_app_is_permanent(app_channel, sandbox):
    sandbox.set_fault("shopify", "*", "revoked")
    with pytest.raises(PermanentError) as exc:
        ShopifyConnector(app_channel, timeout=2).check()
    assert "client id or client secret" in exc.value.message


@pytestmark_db
def test_unknown_store_is_permanent(shopify_channel, sandbox_server):
    shopify_channel.config["api_base"] = sandbox_server.shopify_base("nowhere.myshopify.com")
    with pytest.raises(PermanentError) as exc:
        ShopifyConnector(shopify_channel, timeout=2).check()
    assert "no Shopify store" in exc.value.message
