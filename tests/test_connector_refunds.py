"""The claw-back searches of the Amazon and TikTok Shop adapters: `order_changes` and
`refund_changes` page by page over a time window, against the emulator over real HTTP (Amazon's
library speaks httpx), plus TikTok response parsing with `responses`."""

import dataclasses
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from django.utils import timezone

from channels_app.connectors.amazon import AmazonConnector
from channels_app.connectors.base import (
    ChangePage,
    ConnectorError,
    OrderProjection,
    PageExpired,
    PermanentError,
    RateLimited,
    RefundEvent,
    TemporaryError,
)
from channels_app.connectors.tiktok import TikTokConnector
from channels_app.models import Channel

REFUND_FIELDS = {"order_id", "refund_id", "amount", "currency", "posted_at"}


@pytest.fixture
def amazon(amazon_channel):
    return AmazonConnector(amazon_channel, timeout=2)


@pytest.fixture
def tiktok(tiktok_channel):
    return TikTokConnector(tiktok_channel, timeout=2)


def at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def now_after_a_tick() -> datetime:
    """`until` just after what the test did (windows end before, not at, `until`)."""
    time.sleep(0.01)
    return datetime.now(UTC)


def drain(search, since: datetime, until: datetime) -> tuple[list, int]:
    """Every item of a window, following next_token; returns (items, pages)."""
    items, token, pages = [], "", 0
    while True:
        page = search(since=since, until=until, page_token=token)
        assert isinstance(page, ChangePage) and isinstance(page.items, tuple)
        items += page.items
        pages += 1
        token = page.next_token
        if not token:
            return items, pages


def _amazon_pii(order) -> list[str]:
    return [
        order.buyer["buyerName"],
        order.buyer["buyerEmail"],
        order.recipient["name"],
        order.recipient["addressLine1"],
        order.recipient["postalCode"],
        order.recipient["phone"],
    ]


def _tiktok_pii(order) -> list[str]:
    address = order.recipient
    return [order.buyer_email, order.user_id] + [
        address[k] for k in ("name", "phone_number", "full_address", "postal_code")
    ]


def assert_no_pii(items, *pii: str):
    for item in items:
        if isinstance(item, RefundEvent):
            assert {f.name for f in dataclasses.fields(item)} == REFUND_FIELDS
        else:
            assert isinstance(item, OrderProjection)
        text = repr(item)
        for value in pii:
            assert value not in text


# --- the contract's shapes ---


def test_the_shapes_hold_no_buyer_data_and_page_expired_is_recognisable():
    assert {f.name for f in dataclasses.fields(RefundEvent)} == REFUND_FIELDS
    assert {f.name for f in dataclasses.fields(ChangePage)} == {"items", "next_token"}
    assert ChangePage(()).next_token == ""
    assert issubclass(PageExpired, ConnectorError) and not PageExpired.permanent
    assert not issubclass(PageExpired, PermanentError)
    event = RefundEvent("1", "r1", Decimal("1.50"), "USD", None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.amount = Decimal("2")


# --- Amazon: Finances API (listFinancialEvents) ---

pytestmark_db = pytest.mark.django_db


@pytestmark_db
def test_amazon_refunds_and_partial_refunds_are_served_once_with_stable_ids(amazon, sandbox, demo):
    creds = demo["amazon"]
    order_id = creds["orders"][1]
    order = sandbox.amazon.orders[order_id]
    since = datetime.now(UTC) - timedelta(seconds=1)
    updated = order.updated
    sandbox.refund_order("amazon", order_id, amount="5.00")
    assert sandbox.amazon.orders[order_id].updated > updated  # the order shows as changed
    sandbox.refund_order("amazon", order_id)  # the rest
    sandbox.refund_order("amazon", order_id)  # nothing left: nothing posted
    sandbox.refund_order("amazon", creds["other"]["order_id"], amount="3.00")  # another seller
    until = now_after_a_tick()

    first, pages = drain(amazon.refund_changes, since, until)
    assert pages == 1
    assert [(e.order_id, e.amount, e.currency) for e in first] == [
        (order_id, Decimal("5.00"), order.currency),
        (order_id, order.total - Decimal("5.00"), order.currency),
    ]
    # The seller's fee adjustments (commission back, refund commission) are not buyer money.
    assert sum(e.amount for e in first) == order.total == sandbox.amazon.orders[order_id].refunded
    assert len({e.refund_id for e in first}) == 2
    assert all(e.refund_id.startswith(order_id + ":") for e in first)
    assert all(since - timedelta(seconds=1) <= e.posted_at <= until for e in first)

    again, _ = drain(amazon.refund_changes, since, until)
    assert again == first  # same ids, same amounts: the job can deduplicate on refund_id
    assert sandbox.call_count("amazon", "listFinancialEvents") == 2
    assert_no_pii(first, *_amazon_pii(order))


@pytestmark_db
def test_amazon_windows_include_since_and_exclude_until(amazon, sandbox, demo):
    order_id = demo["amazon"]["orders"][0]
    t0 = int(time.time()) - 3600
    for offset in (0, 10, 20):
        sandbox.amazon.record_refund(order_id, Decimal("1.00") + offset, posted=t0 + offset)

    def amounts(start, end):
        return [e.amount for e in drain(amazon.refund_changes, at(start), at(end))[0]]

    assert amounts(t0, t0 + 10) == [Decimal("1.00")]
    assert amounts(t0 + 10, t0 + 20) == [Decimal("11.00")]
    assert amounts(t0 + 20, t0 + 30) == [Decimal("21.00")]
    assert amounts(t0 + 0.5, t0 + 20.5) == [Decimal("11.00"), Decimal("21.00")]
    assert amounts(t0 - 60, t0) == []
    assert amounts(t0 + 10, t0 + 10) == []  # an empty window asks nothing
    assert sandbox.call_count("amazon", "listFinancialEvents") == 5


@pytestmark_db
def test_amazon_refunds_page_by_page_and_resume_from_a_token(amazon_channel, sandbox, demo):
    order_id = demo["amazon"]["orders"][0]
    t0 = int(time.time()) - 7200
    for n in range(130):
        sandbox.amazon.record_refund(order_id, Decimal("0.50"), posted=t0 + n)
    since, until = at(t0), at(t0 + 1000)

    first = AmazonConnector(amazon_channel, timeout=2).refund_changes(since=since, until=until)
    assert len(first.items) == 100 and first.next_token
    # A later run (another process, after a crash) resumes from the stored token.
    resumed = AmazonConnector(amazon_channel, timeout=2)
    second = resumed.refund_changes(since=since, until=until, page_token=first.next_token)
    assert len(second.items) == 30 and second.next_token == ""
    ids = [e.refund_id for e in first.items + second.items]
    assert len(set(ids)) == 130
    assert [e.posted_at for e in first.items + second.items] == [at(t0 + n) for n in range(130)]
    assert resumed.refund_changes(since=since, until=until, page_token=first.next_token) == second
    assert sandbox.call_count("amazon", "listFinancialEvents") == 3  # never one call per order


@pytestmark_db
def test_amazon_refused_page_tokens_raise_page_expired(amazon, sandbox, demo):
    order_id = demo["amazon"]["orders"][0]
    t0 = int(time.time()) - 7200
    for n in range(3):
        sandbox.amazon.record_refund(order_id, Decimal("1"), posted=t0 + n)
    sandbox.set_rate_limit("listFinancialEvents", rate=100, burst=100)
    since, until = at(t0), at(t0 + 100)
    token = _amazon_small_page_token(amazon, since, until)

    for bad in ("not-a-token", token[:-3] + "abc"):
        with pytest.raises(PageExpired) as exc:
            amazon.refund_changes(since=since, until=until, page_token=bad)
        assert not exc.value.permanent and "start the window again" in exc.value.message
    with pytest.raises(PageExpired):  # a token is only good for the window it came from
        amazon.refund_changes(since=since, until=at(t0 + 50), page_token=token)
    sandbox.amazon.page_token_ttl = 0  # tokens expire
    time.sleep(0.01)
    with pytest.raises(PageExpired):
        amazon.refund_changes(since=since, until=until, page_token=token)
    # Restarting the window from its first page works.
    assert len(drain(amazon.refund_changes, since, until)[0]) == 3

    with pytest.raises(PageExpired):
        amazon.order_changes(since=since, until=until, page_token="not-a-token")


def _amazon_small_page_token(amazon, since, until) -> str:
    """A real NextToken for [since, until): asked for with 1 event a page, by hand."""
    from sp_api.api import Finances

    response = amazon._run(
        Finances,
        "listFinancialEvents",
        lambda c: c.list_financial_events(
            PostedAfter=since.isoformat(), PostedBefore=until.isoformat(), MaxResultsPerPage=1
        ),
    )
    assert response.next_token
    return response.next_token


@pytestmark_db
def test_amazon_429_is_rate_limited_with_the_usage_plan_wait(amazon, sandbox, demo):
    since, until = datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC)
    sandbox.set_fault("amazon", "listFinancialEvents", "429", times=1)
    with pytest.raises(RateLimited) as exc:
        amazon.refund_changes(since=since, until=until)
    assert exc.value.retry_after == 2.0 and not exc.value.permanent  # 1 / 0.5 per second
    assert amazon.refund_changes(since=since, until=until).items == ()
    assert sandbox.throttled_count("amazon", "listFinancialEvents") == 1

    sandbox.set_rate_limit("listFinancialEvents", rate=0.5, burst=1)  # the seller's own bucket
    amazon.refund_changes(since=since, until=until)
    with pytest.raises(RateLimited) as exc:
        amazon.refund_changes(since=since, until=until)
    assert exc.value.retry_after == 2.0
    assert sandbox.throttled_count("amazon", "listFinancialEvents") == 2
    assert sandbox.call_count("amazon", "listFinancialEvents") == 4


@pytestmark_db
@pytest.mark.parametrize("mode", ["500", "non_json_500"])
def test_amazon_refund_search_server_errors_are_temporary(amazon, sandbox, mode):
    since, until = datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC)
    sandbox.set_fault("amazon", "listFinancialEvents", mode, times=1)
    with pytest.raises(TemporaryError):
        amazon.refund_changes(since=since, until=until)
    assert amazon.refund_changes(since=since, until=until).next_token == ""


@pytestmark_db
def test_amazon_windows_ending_within_the_posting_lag_are_retried_not_cut(amazon, sandbox, demo):
    sandbox.amazon.search_lag_seconds = 120  # as on Amazon: the last two minutes are not served
    order_id = demo["amazon"]["orders"][0]
    sandbox.amazon.record_refund(order_id, Decimal("2.00"), posted=time.time() - 600)
    sandbox.refund_order("amazon", order_id, amount="1.00")  # now: not served yet
    since, until = datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC)

    with pytest.raises(TemporaryError) as exc:
        amazon.refund_changes(since=since, until=until)
    assert 100 <= exc.value.retry_after <= 121
    with pytest.raises(TemporaryError) as exc:
        amazon.order_changes(since=since, until=until)
    assert 100 <= exc.value.retry_after <= 121

    settled = until - timedelta(minutes=3)
    assert [e.amount for e in amazon.refund_changes(since=since, until=settled).items] == [
        Decimal("2.00")
    ]
    assert amazon.order_changes(since=since, until=settled).next_token == ""

    # Without a lag (the emulator's default) everything is published at once.
    sandbox.amazon.search_lag_seconds = 0
    ahead = datetime.now(UTC) + timedelta(seconds=2)
    assert [e.amount for e in amazon.refund_changes(since=since, until=ahead).items] == [
        Decimal("2.00"),
        Decimal("1.00"),
    ]
    assert amazon.order_changes(since=since, until=ahead).items


@pytestmark_db
def test_amazon_order_changes_pages_and_sees_cancellations_and_refunds(amazon, sandbox, demo):
    creds = demo["amazon"]
    since = datetime.now(UTC) - timedelta(seconds=1)
    sandbox.cancel_order("amazon", creds["orders"][2])
    sandbox.refund_order("amazon", creds["orders"][3], amount="1.00")
    for n in range(103):
        sandbox.add_order("amazon", creds["seller_id"], order_id=f"113-0000000-{n:07d}")
    until = now_after_a_tick()

    first = amazon.order_changes(since=since, until=until)
    assert len(first.items) == 100 and first.next_token
    second = amazon.order_changes(since=since, until=until, page_token=first.next_token)
    assert second.next_token == ""
    changed = {o.order_id: o for o in first.items + second.items}
    assert len(changed) == 105
    assert changed[creds["orders"][2]].cancelled
    assert changed[creds["orders"][3]].status  # changed; the money is in refund_changes
    assert sandbox.call_count("amazon", "searchOrders") == 2
    assert_no_pii(changed.values(), *_amazon_pii(sandbox.amazon.orders[creds["orders"][2]]))

    # Windows: orders updated before `since` are not served.
    t0 = int(time.time()) - 5000
    sandbox.add_order("amazon", creds["seller_id"], order_id="113-1111111-0000001", updated=t0)
    sandbox.add_order("amazon", creds["seller_id"], order_id="113-1111111-0000002", updated=t0 + 5)
    window = drain(amazon.order_changes, at(t0), at(t0 + 10))[0]
    assert [o.order_id for o in window] == ["113-1111111-0000001", "113-1111111-0000002"]
    assert [o.order_id for o in drain(amazon.order_changes, at(t0 + 1), at(t0 + 10))[0]] == [
        "113-1111111-0000002"
    ]


@pytestmark_db
def test_amazon_changed_orders_still_works(amazon, sandbox, demo):
    since = datetime.now(UTC) - timedelta(days=60)
    assert {o.order_id for o in amazon.changed_orders(since)} == set(demo["amazon"]["orders"])


@pytestmark_db
def test_amazon_refund_search_logs_no_pii_or_secrets(amazon, sandbox, demo, caplog):
    caplog.set_level(logging.DEBUG)
    order_id = demo["amazon"]["orders"][0]
    stored = sandbox.amazon.orders[order_id]
    since = datetime.now(UTC) - timedelta(seconds=1)
    sandbox.refund_order("amazon", order_id, amount="2.00")
    drain(amazon.refund_changes, since, now_after_a_tick())
    for secret in (
        stored.buyer["buyerName"],
        stored.buyer["buyerEmail"],
        demo["amazon"]["client_secret"],
        demo["amazon"]["refresh_token"],
    ):
        assert secret not in caplog.text


@pytestmark_db
def test_the_control_api_posts_a_refund_event(amazon, sandbox_server, sandbox, demo):
    order_id = demo["amazon"]["orders"][0]
    since = datetime.now(UTC) - timedelta(seconds=1)
    answer = requests.post(
        f"{sandbox_server.url}/_sandbox/orders/amazon/{order_id}/refund",
        json={"amount": "4.25"},
        timeout=5,
    )
    assert answer.status_code == 200
    events = drain(amazon.refund_changes, since, now_after_a_tick())[0]
    assert [(e.order_id, e.amount) for e in events] == [(order_id, Decimal("4.25"))]


# --- TikTok Shop: Return & Refund API (returns search) ---


@pytestmark_db
def test_tiktok_refunds_and_partial_refunds_are_served_once_with_stable_ids(tiktok, sandbox, demo):
    creds = demo["tiktok"]
    order_id = creds["orders"][0]
    order = sandbox.tiktok.orders[order_id]
    since = datetime.now(UTC).replace(microsecond=0)
    updated = order.update_time
    sandbox.refund_order("tiktok", order_id, amount="2.00")
    assert sandbox.tiktok.orders[order_id].update_time > updated
    sandbox.refund_order("tiktok", order_id)
    sandbox.refund_order("tiktok", creds["other"]["order_id"], amount="1.00")  # another shop
    # Returns that gave no money back (yet) are not refunds.
    pending = sandbox.tiktok.add_return(order_id, "3.00", status="AWAITING_BUYER_SHIP")
    sandbox.tiktok.add_return(order_id, "3.00", return_type="REPLACEMENT")
    sandbox.tiktok.add_return(order_id, "3.00", status="REFUND_OR_RETURN_REQUEST_REJECT")
    until = datetime.now(UTC) + timedelta(seconds=2)  # TikTok serves changes at once

    first, pages = drain(tiktok.refund_changes, since, until)
    assert pages == 1
    assert sorted(e.amount for e in first) == sorted([Decimal("2.00"), order.total - 2])
    assert {e.order_id for e in first} == {order_id} and {e.currency for e in first} == {"USD"}
    assert len({e.refund_id for e in first}) == 2
    assert {e.refund_id for e in first} <= set(sandbox.tiktok.returns)
    assert drain(tiktok.refund_changes, since, until)[0] == first
    assert sandbox.call_count("tiktok", "searchReturns") == 2

    # The pending return completes later: served then, in the window of its completion.
    sandbox.tiktok.update_return(
        pending.return_id, return_status="RETURN_OR_REFUND_REQUEST_COMPLETE"
    )
    completion = at(sandbox.tiktok.returns[pending.return_id].update_time)
    assert completion >= since
    completed = drain(tiktok.refund_changes, completion, completion + timedelta(seconds=1))[0]
    assert [(e.refund_id, e.amount) for e in completed] == [(pending.return_id, Decimal("3.00"))]
    assert_no_pii(first + completed, *_tiktok_pii(order))


@pytestmark_db
def test_tiktok_windows_include_since_and_exclude_until(tiktok, sandbox, demo):
    order_id = demo["tiktok"]["orders"][1]
    t0 = int(time.time()) - 3600
    for offset in (0, 10, 20):
        sandbox.tiktok.add_return(order_id, Decimal("1.00") + offset, when=t0 + offset)

    def amounts(start, end):
        return [e.amount for e in drain(tiktok.refund_changes, at(start), at(end))[0]]

    assert amounts(t0, t0 + 10) == [Decimal("1.00")]
    assert amounts(t0 + 10, t0 + 20) == [Decimal("11.00")]
    assert amounts(t0 + 20, t0 + 30) == [Decimal("21.00")]
    # Whole seconds: a second is served by the window in which it ends, so [t0 + 0.5,
    # t0 + 10.5) holds the second t0 (over at t0 + 1) and not t0 + 10 (over at t0 + 11).
    assert amounts(t0 + 0.5, t0 + 10.5) == [Decimal("1.00")]
    assert amounts(t0 + 10.5, t0 + 20.5) == [Decimal("11.00")]
    assert amounts(t0 + 10.2, t0 + 10.7) == []  # within one second: asks nothing
    assert amounts(t0 - 60, t0) == []

    orders = demo["tiktok"]["orders"]
    sandbox.tiktok.orders[orders[2]].update_time = t0
    sandbox.tiktok.orders[orders[3]].update_time = t0 + 10
    assert [o.order_id for o in drain(tiktok.order_changes, at(t0), at(t0 + 10))[0]] == [orders[2]]
    assert [o.order_id for o in drain(tiktok.order_changes, at(t0 + 10), at(t0 + 11))[0]] == [
        orders[3]
    ]


@pytestmark_db
def test_tiktok_refunds_page_by_page_and_resume_from_a_token(tiktok_channel, sandbox, demo):
    order_id = demo["tiktok"]["orders"][0]
    t0 = int(time.time()) - 7200
    for n in range(120):
        sandbox.tiktok.add_return(order_id, "0.50", when=t0 + n)
    since, until = at(t0), at(t0 + 1000)

    adapter = TikTokConnector(tiktok_channel, timeout=2)
    first = adapter.refund_changes(since=since, until=until)
    assert len(first.items) == 50 and first.next_token
    resumed = TikTokConnector(Channel.objects.get(pk=tiktok_channel.pk), timeout=2)
    second = resumed.refund_changes(since=since, until=until, page_token=first.next_token)
    third = resumed.refund_changes(since=since, until=until, page_token=second.next_token)
    assert (len(second.items), len(third.items), third.next_token) == (50, 20, "")
    items = first.items + second.items + third.items
    assert len({e.refund_id for e in items}) == 120
    assert [e.posted_at for e in items] == [at(t0 + n) for n in range(120)]  # oldest first
    assert sandbox.call_count("tiktok", "searchReturns") == 3


@pytestmark_db
def test_tiktok_refused_page_tokens_raise_page_expired(tiktok, sandbox, demo):
    order_id = demo["tiktok"]["orders"][0]
    t0 = int(time.time()) - 7200
    for n in range(60):
        sandbox.tiktok.add_return(order_id, "1", when=t0 + n)
    since, until = at(t0), at(t0 + 100)
    token = tiktok.refund_changes(since=since, until=until).next_token
    assert token

    with pytest.raises(PageExpired) as exc:
        tiktok.refund_changes(since=since, until=until, page_token="garbage!")
    assert not exc.value.permanent
    with pytest.raises(PageExpired):  # not from this search
        tiktok.refund_changes(since=since, until=at(t0 + 50), page_token=token)
    with pytest.raises(PageExpired):
        tiktok.order_changes(since=since, until=until, page_token="garbage!")
    sandbox.tiktok.page_token_ttl = 0
    time.sleep(0.01)
    with pytest.raises(PageExpired):
        tiktok.refund_changes(since=since, until=until, page_token=token)
    sandbox.tiktok.page_token_ttl = 3600  # restarting the window from its first page works
    assert len(drain(tiktok.refund_changes, since, until)[0]) == 60


@pytestmark_db
def test_tiktok_429_is_rate_limited_then_works(tiktok, sandbox):
    since, until = datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC)
    sandbox.set_fault("tiktok", "searchReturns", "429", times=1, retry_after=0.5)
    with pytest.raises(RateLimited) as exc:
        tiktok.refund_changes(since=since, until=until)
    assert exc.value.retry_after == 0.5
    assert tiktok.refund_changes(since=since, until=until).next_token == ""
    assert sandbox.throttled_count("tiktok", "searchReturns") == 1
    assert sandbox.call_count("tiktok", "searchReturns") == 2

    sandbox.set_fault("tiktok", "searchReturns", "500", times=1)
    with pytest.raises(TemporaryError):
        tiktok.refund_changes(since=since, until=until)


@pytestmark_db
def test_tiktok_order_changes_pages_and_sees_cancellations(tiktok, sandbox, demo):
    creds = demo["tiktok"]
    since = datetime.now(UTC).replace(microsecond=0)
    sandbox.cancel_order("tiktok", creds["orders"][1])
    for _ in range(104):
        sandbox.add_order("tiktok", creds["shop_id"])
    until = datetime.now(UTC) + timedelta(seconds=2)

    items, pages = drain(tiktok.order_changes, since, until)
    assert (len(items), pages) == (105, 2)
    assert sandbox.call_count("tiktok", "searchOrders") == 2
    cancelled = next(o for o in items if o.order_id == creds["orders"][1])
    assert cancelled.cancelled and cancelled.status == "CANCELLED"
    times = [o.updated_at for o in items]
    assert times == sorted(times)  # oldest change first
    assert_no_pii(items, *_tiktok_pii(sandbox.tiktok.orders[creds["orders"][1]]))
    # The old generator is still there.
    assert {o.order_id for o in tiktok.changed_orders(since)} == {o.order_id for o in items}


# --- TikTok parsing, offline with `responses` ---

SECRET = "e59af819cc"
BASE = "https://open-api.tiktokglobalshop.com"


def _offline_channel() -> Channel:
    channel = Channel(
        kind="tiktok", name="TikTok", config={"app_key": "29a39d", "shop_cipher": "ROW_abc"}
    )
    channel.set_secret("app_secret", SECRET)
    channel.set_secret("refresh_token", "ROW_refresh")
    channel.set_secret("runtime_access_token", "ROW_access")
    channel.token_expires_at = timezone.now() + timedelta(days=3)
    return channel


def _return(**fields) -> dict:
    record = {
        "return_id": "4035000000000000001",
        "order_id": "576461413038785752",
        "return_type": "REFUND",
        "return_status": "RETURN_OR_REFUND_REQUEST_COMPLETE",
        "update_time": 1700000100,
        "return_reason_text": "Sent to Jane Doe, 1 Main St",
        "refund_amount": {"currency": "USD", "refund_total": "12.50", "refund_subtotal": "10"},
    }
    record.update(fields)
    return record


@responses.activate
def test_tiktok_refund_search_request_and_parsing():
    page = [
        _return(),
        _return(
            return_id="2",
            return_type="RETURN_AND_REFUND",
            refund_amount={"currency": "GBP", "refund_total": "3.10"},
        ),
        _return(return_id="3", return_status="AWAITING_BUYER_SHIP"),
        _return(return_id="4", return_type="REPLACEMENT"),
        _return(return_id="5", refund_amount={"currency": "USD", "refund_total": "0.00"}),
        _return(return_id="6", refund_amount=None),
        _return(return_id="", order_id="1"),
    ]
    responses.post(
        f"{BASE}/return_refund/202309/returns/search",
        json={"code": 0, "data": {"return_orders": page, "next_page_token": "tok2"}},
    )
    adapter = TikTokConnector(_offline_channel())
    result = adapter.refund_changes(
        since=datetime.fromtimestamp(1700000000.2, UTC),
        until=datetime.fromtimestamp(1700003600, UTC),
        page_token="tok1",
    )
    assert result == ChangePage(
        (
            RefundEvent(
                "576461413038785752",
                "4035000000000000001",
                Decimal("12.50"),
                "USD",
                datetime.fromtimestamp(1700000100, UTC),
            ),
            RefundEvent(
                "576461413038785752",
                "2",
                Decimal("3.10"),
                "GBP",
                datetime.fromtimestamp(1700000100, UTC),
            ),
        ),
        "tok2",
    )
    assert "Jane Doe" not in repr(result)
    (call,) = responses.calls
    query = {k: v[0] for k, v in parse_qs(urlsplit(call.request.url).query).items()}
    assert query["page_token"] == "tok1" and query["page_size"] == "50"
    assert (query["sort_field"], query["sort_order"]) == ("update_time", "ASC")
    assert query["sign"] and query["shop_cipher"] == "ROW_abc"
    assert json.loads(call.request.body) == {
        "update_time_ge": 1700000000,  # whole seconds
        "update_time_lt": 1700003600,
        "return_status": ["RETURN_OR_REFUND_REQUEST_COMPLETE"],
        "return_types": ["REFUND", "RETURN_AND_REFUND"],
    }


@responses.activate
def test_tiktok_a_refused_page_token_is_page_expired():
    responses.post(
        f"{BASE}/return_refund/202309/returns/search",
        status=400,
        json={"code": 36009003, "message": "Invalid page_token.", "data": None},
    )
    adapter = TikTokConnector(_offline_channel())
    since, until = datetime.fromtimestamp(1700000000, UTC), datetime.fromtimestamp(1700003600, UTC)
    with pytest.raises(PageExpired):
        adapter.refund_changes(since=since, until=until, page_token="old")
    assert adapter.refund_changes(since=until, until=since) == ChangePage(())  # asks nothing
    assert len(responses.calls) == 1
