"""The Amazon adapter (python-amazon-sp-api) against the emulator over real HTTP."""

import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from channels_app.connectors import connector_for
from channels_app.connectors.amazon import AmazonConnector, default_endpoint
from channels_app.connectors.base import (
    BuyerHint,
    BuyerMatch,
    OrderNotFound,
    PermanentError,
    RateLimited,
    TemporaryError,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def amazon(amazon_channel):
    return AmazonConnector(amazon_channel, timeout=1)


def test_registry_builds_the_amazon_adapter(amazon_channel):
    adapter = connector_for(amazon_channel)
    assert isinstance(adapter, AmazonConnector)
    assert [f.name for f in adapter.config_fields] == [
        "client_id",
        "region",
        "marketplace_ids",
        "endpoint",
        "lwa_url",
    ]
    assert [f.name for f in adapter.secret_fields] == ["client_secret", "refresh_token"]
    assert default_endpoint("eu") == "https://sellingpartnerapi-eu.amazon.com"


def test_check_lists_the_marketplaces(amazon):
    check = amazon.check()
    assert check.summary == "Amazon marketplaces: Amazon.com (US), Amazon.ca (CA)."
    assert [m["id"] for m in check.details["marketplaces"]] == ["ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"]
    assert check.discovered_config == {}


def test_check_discovers_marketplaces_or_refuses_foreign_ones(amazon_channel):
    amazon_channel.config["marketplace_ids"] = []
    check = AmazonConnector(amazon_channel, timeout=1).check()
    assert check.discovered_config == {"marketplace_ids": ["ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"]}

    amazon_channel.config["marketplace_ids"] = ["A1PA6795UKMFR9"]
    with pytest.raises(PermanentError) as exc:
        AmazonConnector(amazon_channel, timeout=1).check()
    assert "A1PA6795UKMFR9" in exc.value.message and "Amazon.com (US)" in exc.value.message


def test_fetch_order_returns_a_non_pii_projection(amazon, sandbox, demo):
    stored = sandbox.amazon.orders[demo["amazon"]["order_id"]]
    order = amazon.fetch_order(demo["amazon"]["order_id"])
    assert order.order_id == stored.order_id and order.channel_kind == "amazon"
    assert order.status == "SHIPPED" and not order.cancelled
    assert order.total == stored.total and order.currency == "USD"
    assert order.item_count == sum(i.quantity for i in stored.items)
    assert order.marketplace == "ATVPDKIKX0DER"
    assert order.purchased_at == datetime.fromtimestamp(int(stored.created), UTC)
    assert order.buyer_match == BuyerMatch.NOT_GIVEN
    # Only PROCEEDS and FULFILLMENT are asked for: Amazon sends no buyer data to compare.
    hinted = amazon.fetch_order(demo["amazon"]["order_id"], match=BuyerHint(postal_code="98101"))
    assert hinted.buyer_match == BuyerMatch.UNAVAILABLE
    text = repr(hinted)
    for pii in (
        stored.buyer["buyerName"],
        stored.buyer["buyerEmail"],
        stored.recipient["postalCode"],
    ):
        assert pii not in text


def test_another_sellers_order_is_not_found(amazon, sandbox, demo):
    with pytest.raises(OrderNotFound) as exc:
        amazon.fetch_order(demo["amazon"]["other"]["order_id"])
    assert exc.value.permanent
    with pytest.raises(OrderNotFound):
        amazon.fetch_order("111-0000000-0000000")
    calls = sandbox.call_count("amazon", "getOrder")
    with pytest.raises(OrderNotFound):
        amazon.fetch_order("not-an-order")
    assert sandbox.call_count("amazon", "getOrder") == calls  # no quota spent on a typo


def test_changed_orders_pages_and_sees_cancellations(amazon, sandbox, demo):
    assert {o.order_id for o in amazon.changed_orders(datetime.now(UTC) - timedelta(days=60))} == (
        set(demo["amazon"]["orders"])
    )
    since = datetime.now(UTC) - timedelta(seconds=1)
    sandbox.cancel_order("amazon", demo["amazon"]["orders"][2])
    for n in range(105):
        sandbox.add_order("amazon", demo["amazon"]["seller_id"], order_id=f"113-0000000-{n:07d}")
    changed = list(amazon.changed_orders(since))
    assert len(changed) == 106
    cancelled = next(o for o in changed if o.order_id == demo["amazon"]["orders"][2])
    assert cancelled.cancelled and cancelled.status == "CANCELLED"
    assert sandbox.call_count("amazon", "searchOrders") == 3  # 1 + two pages of 100


def test_429_is_rate_limited_with_the_usage_plan_wait_then_works(amazon, sandbox, demo):
    sandbox.set_fault("amazon", "getOrder", "429", times=1)
    with pytest.raises(RateLimited) as exc:
        amazon.fetch_order(demo["amazon"]["order_id"])
    assert exc.value.retry_after == 2.0 and not exc.value.permanent  # 1 / 0.5 per second
    assert amazon.fetch_order(demo["amazon"]["order_id"]).order_id == demo["amazon"]["order_id"]


def test_exhausted_bucket_is_rate_limited(amazon, sandbox, demo):
    sandbox.set_rate_limit("searchOrders", rate=0.0056, burst=1)
    list(amazon.changed_orders(datetime.now(UTC) - timedelta(days=1)))
    with pytest.raises(RateLimited) as exc:
        list(amazon.changed_orders(datetime.now(UTC) - timedelta(days=1)))
    assert exc.value.retry_after == pytest.approx(178.571, abs=0.01)
    assert sandbox.throttled_count("amazon", "searchOrders") == 1


@pytest.mark.parametrize("mode", ["500", "non_json_500"])
def test_server_errors_are_temporary(amazon, sandbox, demo, mode):
    sandbox.set_fault("amazon", "getOrder", mode, times=1)
    with pytest.raises(TemporaryError) as exc:
        amazon.fetch_order(demo["amazon"]["order_id"])
    assert not exc.value.permanent
    assert amazon.fetch_order(demo["amazon"]["order_id"])


@pytest.mark.parametrize("mode", ["500", "non_json_500"])
def test_lwa_server_errors_are_temporary(amazon, sandbox, mode):
    sandbox.set_fault("amazon", "lwaToken", mode, times=1)
    with pytest.raises(TemporaryError):
        amazon.check()
    assert amazon.check()


def test_timeouts_are_temporary(amazon_channel, sandbox, demo):
    sandbox.set_fault("amazon", "getOrder", "slow", seconds=0.6, times=1)
    with pytest.raises(TemporaryError) as exc:
        AmazonConnector(amazon_channel, timeout=0.2).fetch_order(demo["amazon"]["order_id"])
    assert "0.2 s" in exc.value.message


def test_unreachable_endpoint_is_temporary(amazon_channel, demo):
    amazon_channel.config["endpoint"] = "http://127.0.0.1:9"
    with pytest.raises(TemporaryError):
        AmazonConnector(amazon_channel, timeout=1).fetch_order(demo["amazon"]["order_id"])


def test_revoked_refresh_token_is_permanent_with_a_way_out(amazon, sandbox, demo):
    sandbox.set_fault("amazon", "*", "revoked")
    with pytest.raises(PermanentError) as exc:
        amazon.fetch_order(demo["amazon"]["order_id"])
    assert exc.value.message == (
        "The refresh token was rejected by Amazon — authorize the app again in Seller Central."
    )


def test_wrong_client_secret_is_permanent(amazon_channel):
    amazon_channel.set_secret("client_secret", "amzn1.oa2-cs.v1.wrong")
    with pytest.raises(PermanentError) as exc:
        AmazonConnector(amazon_channel, timeout=1).check()
    assert "client secret" in exc.value.message


def test_denied_access_token_is_renewed_once(amazon, sandbox, demo):
    amazon.check()
    sandbox.expire_access_tokens("amazon")  # Amazon stops honouring the cached token
    assert amazon.fetch_order(demo["amazon"]["order_id"])
    assert sandbox.call_count("amazon", "lwaToken") == 2
    sandbox.set_fault("amazon", "getOrder", "revoked")  # denied even with a fresh token
    with pytest.raises(PermanentError) as exc:
        amazon.fetch_order(demo["amazon"]["order_id"])
    assert "Orders role" in exc.value.message


def test_access_tokens_are_cached_per_credentials(amazon_channel, sandbox, demo):
    AmazonConnector(amazon_channel, timeout=1).check()
    AmazonConnector(amazon_channel, timeout=1).fetch_order(demo["amazon"]["order_id"])
    assert sandbox.call_count("amazon", "lwaToken") == 1


def test_missing_secret_is_permanent(amazon_channel):
    del amazon_channel.sealed_secrets["refresh_token"]
    with pytest.raises(PermanentError) as exc:
        AmazonConnector(amazon_channel).check()
    assert "refresh token is missing" in exc.value.message


def test_no_pii_reaches_the_logs(amazon, sandbox, demo, caplog):
    caplog.set_level(logging.DEBUG)
    stored = sandbox.amazon.orders[demo["amazon"]["order_id"]]
    amazon.fetch_order(demo["amazon"]["order_id"], match=BuyerHint(postal_code="98101"))
    list(amazon.changed_orders(datetime.now(UTC) - timedelta(days=60)))
    for pii in (stored.buyer["buyerName"], stored.buyer["buyerEmail"], "98101"):
        assert pii not in caplog.text
    assert demo["amazon"]["client_secret"] not in caplog.text
    assert demo["amazon"]["refresh_token"] not in caplog.text
    assert stored.total == Decimal(str(stored.total))
