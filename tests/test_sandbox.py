"""The platform emulator itself, over real HTTP on 127.0.0.1: it must behave like the platforms
where the adapters depend on it (credentials, ownership, rotation, signatures, limits, faults)."""

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from channels_app.connectors.tiktok import sign_request
from channels_app.management.commands.run_sandbox import Command
from channels_app.sandbox import Sandbox, SandboxServer, seed_demo


def lwa(server, creds, **overrides):
    form = {
        "grant_type": "refresh_token",
        "refresh_token": creds["refresh_token"],
        "client_id": creds["client_id"],
        "client_secret": creds["client_secret"],
        **overrides,
    }
    return requests.post(f"{server.url}/amazon/auth/o2/token", data=form, timeout=5)


def amazon_get(server, token, path, **params):
    return requests.get(
        f"{server.url}/amazon{path}",
        params=params,
        headers={"x-amz-access-token": token},
        timeout=5,
    )


def tiktok_call(server, creds, access, path, *, method="GET", params=None, body=None, sign=None):
    query = {"app_key": creds["app_key"], "timestamp": str(int(time.time())), **(params or {})}
    raw = json.dumps(body, separators=(",", ":")).encode() if body is not None else b""
    query["sign"] = sign or sign_request(creds["app_secret"], path, query, raw)
    return requests.request(
        method,
        f"{server.url}/tiktok{path}",
        params=query,
        data=raw,
        headers={"x-tts-access-token": access, "content-type": "application/json"},
        timeout=5,
    )


def tiktok_refresh(server, creds, refresh_token):
    return requests.get(
        f"{server.url}/tiktok-auth/api/v2/token/refresh",
        params={
            "app_key": creds["app_key"],
            "app_secret": creds["app_secret"],
            "refresh_token": refresh_token,
            "grant_type": "refresh_token",
        },
        timeout=5,
    ).json()


def shopify_gql(server, domain, token, query, variables=None):
    return requests.post(
        f"{server.shopify_base(domain)}/admin/api/2026-10/graphql.json",
        json={"query": query, "variables": variables or {}},
        headers={"X-Shopify-Access-Token": token},
        timeout=5,
    )


# --- Amazon ---


def test_lwa_issues_hour_long_tokens_and_refuses_bad_credentials(sandbox_server, demo):
    ok = lwa(sandbox_server, demo["amazon"])
    assert ok.status_code == 200
    assert ok.json()["expires_in"] == 3600 and ok.json()["token_type"] == "bearer"

    wrong_secret = lwa(sandbox_server, demo["amazon"], client_secret="nope")
    assert wrong_secret.status_code == 401 and wrong_secret.json()["error"] == "invalid_client"

    other_apps_token = lwa(
        sandbox_server, demo["amazon"], refresh_token=demo["amazon"]["other"]["refresh_token"]
    )
    assert other_apps_token.status_code == 400
    assert other_apps_token.json()["error"] == "invalid_grant"


def test_amazon_orders_are_the_sellers_own_and_pii_only_when_asked(sandbox_server, demo):
    token = lwa(sandbox_server, demo["amazon"]).json()["access_token"]
    path = f"/orders/2026-01-01/orders/{demo['amazon']['order_id']}"

    lean = amazon_get(sandbox_server, token, path, includedData="PROCEEDS,FULFILLMENT")
    assert lean.status_code == 200
    order = lean.json()["order"]
    assert order["proceeds"]["grandTotal"]["currencyCode"] == "USD"
    assert order["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
    assert "buyer" not in order and "recipient" not in order
    assert lean.headers["x-amzn-RateLimit-Limit"] == "0.5"

    bare = amazon_get(sandbox_server, token, path).json()["order"]
    assert "proceeds" not in bare and "fulfillment" not in bare

    rich = amazon_get(sandbox_server, token, path, includedData="BUYER,RECIPIENT").json()["order"]
    assert rich["buyer"]["buyerEmail"].endswith("@marketplace.amazon.com")
    assert rich["recipient"]["deliveryAddress"]["postalCode"]

    others = amazon_get(
        sandbox_server, token, f"/orders/2026-01-01/orders/{demo['amazon']['other']['order_id']}"
    )
    unknown = amazon_get(sandbox_server, token, "/orders/2026-01-01/orders/111-0000000-0000000")
    assert others.status_code == unknown.status_code == 404
    assert others.json()["errors"][0]["code"] == unknown.json()["errors"][0]["code"] == "NotFound"

    v0 = amazon_get(sandbox_server, token, f"/orders/v0/orders/{demo['amazon']['order_id']}")
    assert v0.json()["payload"]["OrderStatus"] == "Shipped"
    assert v0.json()["payload"]["OrderTotal"]["Amount"] == order["proceeds"]["grandTotal"]["amount"]


def test_amazon_rejects_bad_or_expired_access_tokens(sandbox_server, sandbox, demo):
    path = f"/orders/2026-01-01/orders/{demo['amazon']['order_id']}"
    assert amazon_get(sandbox_server, "Atza|made-up", path).status_code == 403
    token = lwa(sandbox_server, demo["amazon"]).json()["access_token"]
    sandbox.expire_access_tokens("amazon")
    expired = amazon_get(sandbox_server, token, path)
    assert expired.status_code == 403
    assert "expired" in expired.json()["errors"][0]["details"]


def test_amazon_token_bucket_throttles_per_seller_and_counts_calls(sandbox_server, sandbox, demo):
    sandbox.set_rate_limit("getOrder", rate=0.001, burst=3)
    token = lwa(sandbox_server, demo["amazon"]).json()["access_token"]
    other = lwa(sandbox_server, demo["amazon"]["other"]).json()["access_token"]
    path = f"/orders/2026-01-01/orders/{demo['amazon']['order_id']}"
    statuses = [amazon_get(sandbox_server, token, path).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    throttled = amazon_get(sandbox_server, token, path)
    assert throttled.json()["errors"][0]["code"] == "QuotaExceeded"
    assert throttled.headers["x-amzn-RateLimit-Limit"] == "0.001"
    # Another seller has a bucket of its own.
    other_path = f"/orders/2026-01-01/orders/{demo['amazon']['other']['order_id']}"
    assert amazon_get(sandbox_server, other, other_path).status_code == 200
    assert sandbox.call_count("amazon", "getOrder") == 7
    assert sandbox.throttled_count("amazon", "getOrder") == 3


def test_amazon_search_orders_pages_and_sees_changes(sandbox_server, sandbox, demo):
    token = lwa(sandbox_server, demo["amazon"]).json()["access_token"]
    seen, page_token = [], None
    while True:
        params = {"lastUpdatedAfter": "2020-01-01T00:00:00Z", "maxResultsPerPage": 5}
        if page_token:
            params["paginationToken"] = page_token
        body = amazon_get(sandbox_server, token, "/orders/2026-01-01/orders", **params).json()
        seen += [o["orderId"] for o in body["orders"]]
        page_token = (body.get("pagination") or {}).get("nextToken")
        if not page_token:
            break
    assert sorted(seen) == sorted(demo["amazon"]["orders"])  # only the seller's own

    before = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
    sandbox.cancel_order("amazon", demo["amazon"]["orders"][3])
    changed = amazon_get(
        sandbox_server,
        token,
        "/orders/2026-01-01/orders",
        lastUpdatedAfter=before,
        includedData="FULFILLMENT",
    ).json()["orders"]
    assert [(o["orderId"], o["fulfillment"]["fulfillmentStatus"]) for o in changed] == [
        (demo["amazon"]["orders"][3], "CANCELLED")
    ]
    both = amazon_get(
        sandbox_server,
        token,
        "/orders/2026-01-01/orders",
        lastUpdatedAfter=before,
        createdAfter=before,
    )
    assert both.status_code == 400


# --- TikTok ---


def test_tiktok_refresh_rotates_and_the_old_refresh_token_is_refused(sandbox_server, demo):
    creds = demo["tiktok"]
    first = tiktok_refresh(sandbox_server, creds, creds["refresh_token"])
    assert first["code"] == 0
    data = first["data"]
    assert data["refresh_token"] != creds["refresh_token"]
    # Absolute Unix timestamps, not durations.
    assert data["access_token_expire_in"] > time.time() + 3600
    assert data["refresh_token_expire_in"] > data["access_token_expire_in"]

    reused = tiktok_refresh(sandbox_server, creds, creds["refresh_token"])
    assert reused["code"] == 36004004 and reused["data"] is None
    second = tiktok_refresh(sandbox_server, creds, data["refresh_token"])
    assert second["code"] == 0
    assert tiktok_refresh(sandbox_server, creds, data["refresh_token"])["code"] == 36004004
    wrong_secret = tiktok_refresh(
        sandbox_server, {**creds, "app_secret": "x" * 40}, second["data"]["refresh_token"]
    )
    assert wrong_secret["code"] == 36004002


def test_tiktok_checks_every_signature(sandbox_server, sandbox, demo):
    creds = demo["tiktok"]
    access, _ = sandbox.tiktok.issue_access_token(creds["open_id"])
    good = tiktok_call(sandbox_server, creds, access, "/authorization/202309/shops")
    assert good.json()["code"] == 0
    assert good.json()["data"]["shops"][0]["cipher"] == creds["shop_cipher"]

    bad = tiktok_call(sandbox_server, creds, access, "/authorization/202309/shops", sign="0" * 64)
    assert bad.status_code == 401 and bad.json()["code"] == 106001

    # The body is signed too: the same sign over another body fails.
    params = {"page_size": "10", "shop_cipher": creds["shop_cipher"]}
    path = "/order/202309/orders/search"
    query = {"app_key": creds["app_key"], "timestamp": str(int(time.time())), **params}
    signed_for_other_body = sign_request(creds["app_secret"], path, query, b'{"update_time_ge":1}')
    tampered = requests.post(
        f"{sandbox_server.url}/tiktok{path}",
        params={**query, "sign": signed_for_other_body},
        data=b'{"update_time_ge":2}',
        headers={"x-tts-access-token": access},
        timeout=5,
    )
    assert tampered.json()["code"] == 106001


def test_tiktok_tokens_ciphers_and_ownership(sandbox_server, sandbox, demo):
    creds = demo["tiktok"]
    access, _ = sandbox.tiktok.issue_access_token(creds["open_id"])
    cipher = {"shop_cipher": creds["shop_cipher"]}
    orders = "/order/202309/orders"

    unknown_token = tiktok_call(sandbox_server, creds, "ROW_nope", orders, params=cipher)
    assert unknown_token.json()["code"] == 105001
    no_cipher = tiktok_call(sandbox_server, creds, access, orders, params={"ids": "1"})
    assert no_cipher.json()["code"] == 106011

    ids = f"{creds['order_id']},{creds['other']['order_id']},576000000000000001"
    found = tiktok_call(sandbox_server, creds, access, orders, params={"ids": ids, **cipher})
    detail = found.json()["data"]["orders"]
    assert [o["id"] for o in detail] == [creds["order_id"]]  # the other shop's is absent
    assert detail[0]["recipient_address"]["postal_code"] and detail[0]["buyer_email"]
    assert isinstance(detail[0]["payment"]["total_amount"], str)

    sandbox.expire_access_tokens("tiktok")
    expired = tiktok_call(sandbox_server, creds, access, orders, params={"ids": ids, **cipher})
    assert expired.status_code == 401 and expired.json()["code"] == 105002


def test_tiktok_order_search_by_update_time_pages(sandbox_server, sandbox, demo):
    creds = demo["tiktok"]
    access, _ = sandbox.tiktok.issue_access_token(creds["open_id"])
    seen, token = [], ""
    while True:
        params = {
            "page_size": "3",
            "shop_cipher": creds["shop_cipher"],
            "sort_field": "update_time",
        }
        if token:
            params["page_token"] = token
        data = tiktok_call(
            sandbox_server,
            creds,
            access,
            "/order/202309/orders/search",
            method="POST",
            params=params,
            body={"update_time_ge": 0},
        ).json()["data"]
        seen += [o["id"] for o in data["orders"]]
        token = data["next_page_token"]
        if not token:
            break
    assert sorted(seen) == sorted(demo["tiktok"]["orders"])

    since = int(time.time())
    sandbox.cancel_order("tiktok", creds["orders"][2])
    data = tiktok_call(
        sandbox_server,
        creds,
        access,
        "/order/202309/orders/search",
        method="POST",
        params={"page_size": "50", "shop_cipher": creds["shop_cipher"]},
        body={"update_time_ge": since},
    ).json()["data"]
    assert [(o["id"], o["status"]) for o in data["orders"]] == [(creds["orders"][2], "CANCELLED")]


# --- Shopify ---


def test_shopify_graphql_pages_products_and_reports_cost(sandbox_server, demo):
    creds = demo["shopify"]
    query = (
        "query($after: String) { products(first: 20, after: $after) { pageInfo { hasNextPage "
        "endCursor } nodes { id title handle status updatedAt } } }"
    )
    seen, after = [], None
    while True:
        body = shopify_gql(
            sandbox_server, creds["shop_domain"], creds["access_token"], query, {"after": after}
        ).json()
        seen += body["data"]["products"]["nodes"]
        status = body["extensions"]["cost"]["throttleStatus"]
        assert {"maximumAvailable", "currentlyAvailable", "restoreRate"} <= status.keys()
        page = body["data"]["products"]["pageInfo"]
        if not page["hasNextPage"]:
            break
        after = page["endCursor"]
    assert len(seen) == 50 and len({p["id"] for p in seen}) == 50
    assert set(seen[0]) == {"id", "title", "handle", "status", "updatedAt"}  # only what was asked


def test_shopify_throttles_when_the_cost_bucket_is_empty(sandbox_server, sandbox, demo):
    creds = demo["shopify"]
    sandbox.set_shopify_bucket(creds["shop_domain"], maximum=60, restore_rate=1)
    query = "{ products(first: 50) { nodes { id } } }"
    first = shopify_gql(sandbox_server, creds["shop_domain"], creds["access_token"], query)
    assert "errors" not in first.json()
    second = shopify_gql(sandbox_server, creds["shop_domain"], creds["access_token"], query).json()
    assert second["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert second["extensions"]["cost"]["requestedQueryCost"] == 52
    assert second["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] < 52
    assert sandbox.throttled_count("shopify", "products") == 1


def test_shopify_tokens_orders_and_webhook_subscriptions(sandbox_server, sandbox, demo):
    creds = demo["shopify"]
    base = sandbox_server.shopify_base(creds["shop_domain"])
    grant = requests.post(
        f"{base}/admin/oauth/access_token",
        data={
            "grant_type": "client_credentials",
            "client_id": creds["client_id"],
            "client_secret": creds["client_secret"],
        },
        timeout=5,
    )
    assert grant.status_code == 200 and grant.json()["expires_in"] == 86399
    token = grant.json()["access_token"]
    refused = requests.post(
        f"{base}/admin/oauth/access_token",
        json={
            "grant_type": "client_credentials",
            "client_id": creds["client_id"],
            "client_secret": "x",
        },
        timeout=5,
    )
    assert refused.status_code == 400

    assert (
        shopify_gql(
            sandbox_server, creds["shop_domain"], "shpat_nope", "{ shop { name } }"
        ).status_code
        == 401
    )
    sandbox.refund_order("shopify", creds["orders"][0], amount="5.00")
    query = (
        "query($q: String) { orders(first: 50, query: $q) { nodes { id email "
        "displayFinancialStatus totalRefundedSet { shopMoney { amount currencyCode } } } } }"
    )
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
    nodes = shopify_gql(
        sandbox_server, creds["shop_domain"], token, query, {"q": f"updated_at:>='{since}'"}
    ).json()["data"]["orders"]["nodes"]
    assert [(n["id"], n["displayFinancialStatus"]) for n in nodes] == [
        (creds["orders"][0], "PARTIALLY_REFUNDED")
    ]
    assert nodes[0]["totalRefundedSet"]["shopMoney"] == {"amount": "5.00", "currencyCode": "USD"}

    mutation = (
        "mutation { webhookSubscriptionCreate(topic: ORDERS_PAID, webhookSubscription: "
        '{uri: "https://flash.example/hooks/shopify", format: JSON}) { webhookSubscription '
        "{ id topic uri } userErrors { field message } } }"
    )
    created = shopify_gql(sandbox_server, creds["shop_domain"], token, mutation).json()
    assert created["data"]["webhookSubscriptionCreate"]["userErrors"] == []
    assert sandbox.shopify.shops[creds["shop_domain"]].webhooks[0]["topic"] == "ORDERS_PAID"
    again = shopify_gql(sandbox_server, creds["shop_domain"], token, mutation).json()
    assert again["data"]["webhookSubscriptionCreate"]["userErrors"]


class _Receiver(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((dict(self.headers), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_shopify_webhooks_are_signed_like_shopify(sandbox, demo):
    _Receiver.received = []
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=receiver.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{receiver.server_address[1]}/hooks/shopify"
        order_gid = demo["shopify"]["orders"][0]
        status, _, sent = sandbox.send_shopify_webhook(url, topic="orders/paid", order_id=order_gid)
        sandbox.send_shopify_webhook(
            url, topic="orders/paid", order_id=order_gid, event_id=sent["X-Shopify-Event-Id"]
        )
        # Delivery to what the app subscribed: the refund topic carries the Refund resource.
        sandbox.refund_order("shopify", order_gid, amount="3.00")
        shop = sandbox.shopify.shops[demo["shopify"]["shop_domain"]]
        shop.webhooks.append({"topic": "REFUNDS_CREATE", "uri": url})
        delivered = sandbox.shopify.deliver(shop.domain, "refunds/create", order_gid)
    finally:
        receiver.shutdown()
        receiver.server_close()
    assert status == 200 and delivered == [200]
    (headers, body), (dup_headers, _), (refund_headers, refund_body) = _Receiver.received
    assert refund_headers["X-Shopify-Topic"] == "refunds/create"
    refund = json.loads(refund_body)
    assert refund["transactions"][0]["amount"] == "3.00" and refund["order_id"] == int(
        order_gid.rsplit("/", 1)[1]
    )
    expected = base64.b64encode(
        hmac.new(demo["shopify"]["client_secret"].encode(), body, hashlib.sha256).digest()
    ).decode()
    assert headers["X-Shopify-Hmac-Sha256"] == expected
    assert headers["X-Shopify-Topic"] == "orders/paid"
    assert headers["X-Shopify-Shop-Domain"] == demo["shopify"]["shop_domain"]
    assert headers["X-Shopify-API-Version"] == "2026-10"
    assert headers["X-Shopify-Triggered-At"]
    payload = json.loads(body)
    assert payload["admin_graphql_api_id"] == order_gid
    assert payload["email"] == "ann@example.com" and isinstance(payload["total_price"], str)
    # A duplicate delivery: same event id, new webhook id.
    assert dup_headers["X-Shopify-Event-Id"] == headers["X-Shopify-Event-Id"]
    assert dup_headers["X-Shopify-Webhook-Id"] != headers["X-Shopify-Webhook-Id"]


# --- faults and the control API ---


def test_fault_modes(sandbox_server, sandbox, demo):
    creds = demo["amazon"]
    sandbox.set_fault("amazon", "lwaToken", "429", times=1)
    assert lwa(sandbox_server, creds).status_code == 429
    assert lwa(sandbox_server, creds).status_code == 200

    sandbox.set_fault("amazon", "lwaToken", "non_json_500", times=1)
    broken = lwa(sandbox_server, creds)
    assert broken.status_code == 500 and broken.headers["Content-Type"].startswith("text/html")

    sandbox.set_fault("amazon", "*", "revoked")
    assert lwa(sandbox_server, creds).json()["error"] == "invalid_grant"
    sandbox.clear_faults("amazon")
    assert lwa(sandbox_server, creds).status_code == 200

    sandbox.set_fault("shopify", "shop", "slow", seconds=0.6, times=1)
    graphql_url = (
        f"{sandbox_server.shopify_base(demo['shopify']['shop_domain'])}"
        "/admin/api/2026-10/graphql.json"
    )
    with pytest.raises(requests.Timeout):
        requests.post(graphql_url, json={"query": "{ shop { name } }"}, timeout=0.2)

    sandbox.set_fault("tiktok", "refreshToken", "500", times=2)
    assert tiktok_refresh(sandbox_server, demo["tiktok"], "x")["code"] != 0
    with pytest.raises(ValueError):
        sandbox.set_fault("tiktok", "*", "teapot")


def test_control_api_drives_the_sandbox_over_http(sandbox_server, sandbox, demo):
    control = f"{sandbox_server.url}/_sandbox"
    assert requests.get(f"{control}/demo", timeout=5).json()["amazon"]["order_id"]

    created = requests.post(
        f"{control}/orders",
        json={
            "platform": "amazon",
            "owner": demo["amazon"]["seller_id"],
            "order_id": "113-1111111-2222222",
            "items": [{"asin": "B0X", "sku": "S", "title": "T", "quantity": 2, "price": "9.50"}],
        },
        timeout=5,
    )
    assert created.status_code == 201
    assert (
        sandbox.amazon.orders["113-1111111-2222222"].total
        == sandbox.amazon.orders["113-1111111-2222222"].items[0].price * 2
    )

    assert requests.post(f"{control}/orders/amazon/113-1111111-2222222/cancel", timeout=5).ok
    assert sandbox.amazon.orders["113-1111111-2222222"].status == "CANCELLED"
    gid = demo["shopify"]["orders"][1]
    assert requests.post(
        f"{control}/orders/shopify/{gid}/refund", json={"amount": "1"}, timeout=5
    ).ok

    fault = {"platform": "amazon", "operation": "lwaToken", "mode": "500", "times": 1}
    assert requests.post(f"{control}/faults", json=fault, timeout=5).ok
    assert lwa(sandbox_server, demo["amazon"]).status_code == 500
    assert requests.post(
        f"{control}/rate_limits", json={"operation": "getOrder", "rate": 1, "burst": 1}, timeout=5
    ).ok

    calls = requests.get(f"{control}/calls", timeout=5).json()
    assert calls["calls"]["amazon.lwaToken"] == 1
    assert requests.post(f"{control}/calls/reset", timeout=5).ok
    assert requests.get(f"{control}/calls", timeout=5).json() == {"calls": {}, "throttled": {}}
    assert (
        requests.post(f"{control}/faults", json={"platform": "amazon"}, timeout=5).status_code
        == 404
    )
    assert requests.get(f"{sandbox_server.url}/nowhere", timeout=5).status_code == 404


def test_servers_are_independent_and_loopback_only():
    with pytest.raises(ValueError):
        SandboxServer(Sandbox(), host="0.0.0.0")
    first, second = Sandbox(), Sandbox()
    seed_demo(first)
    with SandboxServer(first) as a, SandboxServer(second) as b:
        assert a.port != b.port
        assert requests.get(f"{a.url}/_sandbox", timeout=5).json()["amazon"]["orders"] == 15
        assert requests.get(f"{b.url}/_sandbox", timeout=5).json()["amazon"]["orders"] == 0


def test_run_sandbox_banner_prints_urls_and_demo_credentials(sandbox_server, demo):
    text = Command().banner(sandbox_server, demo)
    assert f"{sandbox_server.url}/amazon/auth/o2/token" in text
    assert demo["tiktok"]["app_key"] in text and demo["shopify"]["access_token"] in text
    assert "/_sandbox/faults" in text
