"""The TikTok Shop adapter: the request signature, rotating refresh tokens refreshed
single-flight, and faults — against the emulator over real HTTP, and with `responses`."""

import hashlib
import hmac
import json
import threading
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from django.db import connection
from django.utils import timezone

from channels_app.connectors import connector_for
from channels_app.connectors import tiktok as tiktok_module
from channels_app.connectors.base import (
    BuyerHint,
    BuyerMatch,
    OrderNotFound,
    PermanentError,
    RateLimited,
    TemporaryError,
    compare_buyer,
)
from channels_app.connectors.tiktok import TikTokConnector, sign_request
from channels_app.models import Channel

SECRET = "e59af819cc"


# --- the signature, by hand ---


def test_sign_request_matches_vectors_computed_by_hand():
    params = {
        "app_key": "29a39d",
        "timestamp": "1700000000",
        "shop_cipher": "ROW_abc",
        "ids": "576461413038785752",
        "sign": "ignored",
        "access_token": "ignored too",
    }
    # Sorted keys, key+value, path first, wrapped in the secret on both sides.
    by_hand = (
        SECRET
        + "/order/202309/orders"
        + "app_key29a39d"
        + "ids576461413038785752"
        + "shop_cipherROW_abc"
        + "timestamp1700000000"
        + SECRET
    )
    expected = hmac.new(SECRET.encode(), by_hand.encode(), hashlib.sha256).hexdigest()
    assert expected == "62a192a9c037e05684326817d18f67a50d059112ae30113a706bf676c5f8c371"
    assert sign_request(SECRET, "/order/202309/orders", params) == expected


@pytest.mark.parametrize(
    "hint, postal, email, verdict",
    [
        (None, "98101", "a@b.c", BuyerMatch.NOT_GIVEN),
        (BuyerHint(postal_code="  "), "98101", None, BuyerMatch.NOT_GIVEN),
        (BuyerHint(postal_code="m5v 2t6"), "M5V2T6", None, BuyerMatch.MATCH),
        (BuyerHint(postal_code="02139"), "02139-4307", None, BuyerMatch.NO_MATCH),
        (BuyerHint(email="Ann@Example.com"), None, "ann@example.com", BuyerMatch.MATCH),
        (BuyerHint(postal_code="98101", email="x@y.z"), "98101", None, BuyerMatch.MATCH),
        (BuyerHint(postal_code="98101", email="x@y.z"), "98101", "ann@b.c", BuyerMatch.NO_MATCH),
        (BuyerHint(postal_code="98101"), None, "ann@b.c", BuyerMatch.UNAVAILABLE),
    ],
)
def test_compare_buyer_normalizes_and_keeps_only_a_verdict(hint, postal, email, verdict):
    assert compare_buyer(hint, postal_code=postal, email=email) == verdict


def _offline_channel(**config) -> Channel:
    """A channel the adapter can use without the database: a valid access token in hand."""
    channel = Channel(
        kind="tiktok",
        name="TikTok",
        config={"app_key": "29a39d", "shop_cipher": "ROW_abc", **config},
    )
    channel.set_secret("app_secret", SECRET)
    channel.set_secret("refresh_token", "ROW_refresh")
    channel.set_secret("runtime_access_token", "ROW_access")
    channel.token_expires_at = timezone.now() + timedelta(days=3)
    return channel


@responses.activate
def test_the_adapter_signs_queries_and_bodies_exactly(monkeypatch):
    monkeypatch.setattr(tiktok_module.time, "time", lambda: 1700000000.25)
    base = "https://open-api.tiktokglobalshop.com"
    order = {"id": "576461413038785752", "status": "DELIVERED", "payment": {}, "line_items": []}
    responses.get(
        f"{base}/order/202309/orders",
        json={"code": 0, "message": "Success", "data": {"orders": [order]}},
    )
    responses.post(
        f"{base}/order/202309/orders/search",
        json={"code": 0, "message": "Success", "data": {"orders": [], "next_page_token": ""}},
    )
    adapter = TikTokConnector(_offline_channel())
    assert adapter.fetch_order("576461413038785752").delivered
    list(adapter.changed_orders(datetime.fromtimestamp(1699990000, UTC)))

    get, post = responses.calls
    query = {k: v[0] for k, v in parse_qs(urlsplit(get.request.url).query).items()}
    assert query["sign"] == "62a192a9c037e05684326817d18f67a50d059112ae30113a706bf676c5f8c371"
    assert get.request.headers["x-tts-access-token"] == "ROW_access"
    assert "access_token" not in query and "app_secret" not in query

    assert post.request.body == b'{"update_time_ge":1699990000}'
    by_hand = (
        SECRET
        + "/order/202309/orders/search"
        + "app_key29a39d"
        + "page_size50"
        + "shop_cipherROW_abc"
        + "sort_fieldupdate_time"
        + "sort_orderASC"
        + "timestamp1700000000"
        + '{"update_time_ge":1699990000}'
        + SECRET
    )
    post_query = {k: v[0] for k, v in parse_qs(urlsplit(post.request.url).query).items()}
    assert (
        post_query["sign"]
        == hmac.new(SECRET.encode(), by_hand.encode(), hashlib.sha256).hexdigest()
    )
    assert post_query["sign"] == "a8a819f2d350dca1ae036dc0787a3b0c211b292f292783ec1aec61e9533511de"


@responses.activate
def test_a_bad_signature_is_a_permanent_error_naming_the_app_secret():
    responses.get(
        "https://open-api.tiktokglobalshop.com/authorization/202309/shops",
        status=401,
        json={"code": 106001, "message": "Invalid credentials.", "data": None},
    )
    with pytest.raises(PermanentError) as exc:
        TikTokConnector(_offline_channel())._call(
            "GET", "/authorization/202309/shops", shop_scoped=False
        )
    assert "app secret" in exc.value.message


# --- against the emulator ---

pytestmark_db = pytest.mark.django_db  # the tests below keep channels in the database


@pytest.fixture
def tiktok(tiktok_channel):
    return TikTokConnector(tiktok_channel, timeout=2)


@pytestmark_db
def test_registry_and_declared_fields(tiktok_channel):
    adapter = connector_for(tiktok_channel)
    assert isinstance(adapter, TikTokConnector)
    assert [f.name for f in adapter.config_fields] == [
        "app_key",
        "api_base",
        "auth_base",
        "shop_cipher",
    ]
    assert [f.name for f in adapter.secret_fields] == ["app_secret", "refresh_token"]


@pytestmark_db
def test_check_lists_authorized_shops_and_discovers_the_cipher(tiktok_channel, demo):
    del tiktok_channel.config["shop_cipher"]
    check = TikTokConnector(tiktok_channel, timeout=2).check()
    assert check.discovered_config == {"shop_cipher": demo["tiktok"]["shop_cipher"]}
    assert check.details["shops"][0]["name"] == "Alpha Coffee Shop"
    assert "Alpha Coffee Shop (US)" in check.summary


@pytestmark_db
def test_a_refresh_is_persisted_sealed_and_the_old_token_is_dead(tiktok, sandbox, demo):
    tiktok.fetch_order(demo["tiktok"]["order_id"])
    channel = Channel.objects.get(pk=tiktok.channel.pk)
    seller = sandbox.tiktok.sellers[demo["tiktok"]["open_id"]]
    assert (
        channel.secret("refresh_token") == seller.refresh_token != demo["tiktok"]["refresh_token"]
    )
    stored = json.dumps(channel.sealed_secrets)
    assert seller.refresh_token not in stored and stored.count('"v1:') == 3
    access = channel.secret("runtime_access_token")
    assert channel.token_expires_at.timestamp() == sandbox.tiktok.access_tokens[access][2]
    assert channel.config["refresh_token_expires_at"].startswith(str(datetime.now(UTC).year + 1))
    assert sandbox.call_count("tiktok", "refreshToken") == 1

    tiktok.fetch_order(demo["tiktok"]["order_id"])  # the saved token is used, no new refresh
    assert sandbox.call_count("tiktok", "refreshToken") == 1
    channel.set_secret("refresh_token", demo["tiktok"]["refresh_token"])  # replaying the old one
    channel.token_expires_at = timezone.now() - timedelta(minutes=1)
    channel.save()
    with pytest.raises(PermanentError) as exc:
        TikTokConnector(Channel.objects.get(pk=channel.pk), timeout=2).fetch_order(
            demo["tiktok"]["order_id"]
        )
    assert "authorize the app again" in exc.value.message


@pytestmark_db
def test_fetch_order_projects_and_compares_the_postal_code_in_memory(tiktok, sandbox, demo):
    stored = sandbox.tiktok.orders[demo["tiktok"]["order_id"]]
    postal = stored.recipient["postal_code"]
    order = tiktok.fetch_order(
        demo["tiktok"]["order_id"], match=BuyerHint(postal_code=f" {postal} ")
    )
    assert order.buyer_match == BuyerMatch.MATCH
    assert order.total == stored.total and order.currency == "USD"
    assert order.item_count == len(stored.line_items)
    assert order.status == "COMPLETED" and order.delivered and not order.cancelled
    assert order.purchased_at == datetime.fromtimestamp(stored.create_time, UTC)
    for pii in (
        stored.buyer_email,
        stored.recipient["name"],
        postal,
        stored.recipient["full_address"],
    ):
        assert pii not in repr(order)
    other = tiktok.fetch_order(demo["tiktok"]["order_id"], match=BuyerHint(postal_code="10001"))
    assert other.buyer_match == BuyerMatch.NO_MATCH


@pytestmark_db
def test_another_sellers_order_is_not_found(tiktok, sandbox, demo):
    with pytest.raises(OrderNotFound):
        tiktok.fetch_order(demo["tiktok"]["other"]["order_id"])
    with pytest.raises(OrderNotFound):
        tiktok.fetch_order("576000000000000001")
    with pytest.raises(OrderNotFound):
        tiktok.fetch_order("DROP TABLE")
    assert sandbox.call_count("tiktok", "getOrderDetail") == 2


@pytestmark_db
def test_changed_orders_follow_update_time(tiktok, sandbox, demo):
    everything = list(tiktok.changed_orders(datetime.now(UTC) - timedelta(days=60)))
    assert {o.order_id for o in everything} == set(demo["tiktok"]["orders"])
    since = datetime.now(UTC).replace(microsecond=0)
    sandbox.cancel_order("tiktok", demo["tiktok"]["orders"][1])
    for _ in range(55):
        sandbox.add_order("tiktok", demo["tiktok"]["shop_id"])
    changed = list(tiktok.changed_orders(since))
    assert len(changed) == 56
    cancelled = next(o for o in changed if o.order_id == demo["tiktok"]["orders"][1])
    assert cancelled.cancelled and cancelled.status == "CANCELLED"
    assert sandbox.call_count("tiktok", "searchOrders") == 3


@pytestmark_db
def test_an_access_token_tiktok_expired_early_is_refreshed_once(tiktok_channel, sandbox, demo):
    access, _ = sandbox.tiktok.issue_access_token(demo["tiktok"]["open_id"], ttl=-5)
    tiktok_channel.set_secret("runtime_access_token", access)
    tiktok_channel.token_expires_at = timezone.now() + timedelta(days=2)  # we think it is fine
    tiktok_channel.save()
    assert TikTokConnector(tiktok_channel, timeout=2).fetch_order(demo["tiktok"]["order_id"])
    assert sandbox.call_count("tiktok", "refreshToken") == 1
    assert sandbox.call_count("tiktok", "getOrderDetail") == 2


@pytestmark_db
def test_save_and_verify_checks_new_unsaved_credentials(tiktok, sandbox, demo):
    tiktok.fetch_order(demo["tiktok"]["order_id"])  # the saved connection is in use
    # The seller authorizes the app again and pastes the new refresh token (not saved yet).
    seller = sandbox.tiktok.sellers[demo["tiktok"]["open_id"]]
    seller.refresh_token = "ROW_reauthorized_by_the_seller"
    channel = Channel.objects.get(pk=tiktok.channel.pk)
    channel.set_secret("refresh_token", "ROW_reauthorized_by_the_seller")
    assert TikTokConnector(channel, timeout=2).check().discovered_config
    assert sandbox.call_count("tiktok", "refreshToken") == 2  # it verified the new token
    rotated = seller.refresh_token
    assert channel.secret("refresh_token") == rotated
    assert Channel.objects.get(pk=channel.pk).secret("refresh_token") == rotated


@pytestmark_db
def test_429_is_rate_limited_then_works(tiktok, sandbox, demo):
    tiktok.fetch_order(demo["tiktok"]["order_id"])
    sandbox.set_fault("tiktok", "getOrderDetail", "429", times=1, retry_after=0.5)
    with pytest.raises(RateLimited) as exc:
        tiktok.fetch_order(demo["tiktok"]["order_id"])
    assert exc.value.retry_after == 0.5
    assert tiktok.fetch_order(demo["tiktok"]["order_id"])


@pytestmark_db
@pytest.mark.parametrize("mode", ["500", "non_json_500"])
def test_server_errors_are_temporary(tiktok, sandbox, demo, mode):
    sandbox.set_fault("tiktok", "searchOrders", mode, times=1)
    with pytest.raises(TemporaryError):
        list(tiktok.changed_orders(datetime.now(UTC) - timedelta(days=1)))
    assert list(tiktok.changed_orders(datetime.now(UTC) - timedelta(days=1))) is not None


@pytestmark_db
def test_a_failed_refresh_keeps_the_refresh_token(tiktok, sandbox, demo):
    sandbox.set_fault("tiktok", "refreshToken", "non_json_500", times=1)
    with pytest.raises(TemporaryError):
        tiktok.fetch_order(demo["tiktok"]["order_id"])
    channel = Channel.objects.get(pk=tiktok.channel.pk)
    assert channel.secret("refresh_token") == demo["tiktok"]["refresh_token"]
    assert tiktok.fetch_order(demo["tiktok"]["order_id"])


@pytestmark_db
def test_timeouts_are_temporary(tiktok_channel, sandbox, demo):
    sandbox.set_fault("tiktok", "refreshToken", "slow", seconds=0.6, times=1)
    with pytest.raises(TemporaryError) as exc:
        TikTokConnector(tiktok_channel, timeout=0.2).fetch_order(demo["tiktok"]["order_id"])
    assert "0.2 s" in exc.value.message


@pytestmark_db
def test_revoked_authorization_is_permanent(tiktok, sandbox, demo):
    tiktok.fetch_order(demo["tiktok"]["order_id"])  # holding a valid access token
    sandbox.set_fault("tiktok", "*", "revoked")
    with pytest.raises(PermanentError) as exc:
        tiktok.fetch_order(demo["tiktok"]["order_id"])
    assert "authorize the app again in TikTok Shop Seller Center" in exc.value.message


@pytestmark_db
def test_wrong_app_secret_is_permanent(tiktok_channel, tiktok, sandbox, demo):
    tiktok_channel.set_secret("app_secret", "0" * 40)
    tiktok_channel.save()
    with pytest.raises(PermanentError) as exc:
        TikTokConnector(tiktok_channel, timeout=2).fetch_order(demo["tiktok"]["order_id"])
    assert "app key or app secret" in exc.value.message

    tiktok_channel.set_secret("app_secret", demo["tiktok"]["app_secret"])
    tiktok_channel.save()
    tiktok.fetch_order(demo["tiktok"]["order_id"])  # now holding a valid access token
    tiktok_channel.set_secret("app_secret", "0" * 40)
    tiktok_channel.save()
    with pytest.raises(PermanentError) as exc:
        TikTokConnector(tiktok_channel, timeout=2).fetch_order(demo["tiktok"]["order_id"])
    assert "signature" in exc.value.message


@pytestmark_db
def test_no_shop_cipher_asks_for_save_and_verify(tiktok_channel, demo):
    del tiktok_channel.config["shop_cipher"]
    with pytest.raises(PermanentError) as exc:
        TikTokConnector(tiktok_channel, timeout=2).fetch_order(demo["tiktok"]["order_id"])
    assert "Save & Verify" in exc.value.message


@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_jobs_with_an_expired_token_refresh_once(tiktok_channel, sandbox, demo):
    creds = demo["tiktok"]
    expired, _ = sandbox.tiktok.issue_access_token(creds["open_id"], ttl=-60)
    tiktok_channel.set_secret("runtime_access_token", expired)
    tiktok_channel.token_expires_at = timezone.now() - timedelta(minutes=1)
    tiktok_channel.save()
    start = threading.Barrier(10)
    results, errors = [], []

    def job():
        try:
            channel = Channel.objects.get(pk=tiktok_channel.pk)  # each job loads the old tokens
            start.wait(timeout=10)
            results.append(TikTokConnector(channel, timeout=5).fetch_order(creds["order_id"]))
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=job) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert [r.order_id for r in results] == [creds["order_id"]] * 10
    assert sandbox.call_count("tiktok", "refreshToken") == 1
    # All ten used the new token: the old one was refused (105002) and none refreshed again.
    assert sandbox.call_count("tiktok", "getOrderDetail") == 10
    channel = Channel.objects.get(pk=tiktok_channel.pk)
    seller = sandbox.tiktok.sellers[creds["open_id"]]
    assert channel.secret("refresh_token") == seller.refresh_token != creds["refresh_token"]
    assert seller.refresh_token not in json.dumps(channel.sealed_secrets)
    assert channel.token_expires_at > timezone.now() + timedelta(days=6)
