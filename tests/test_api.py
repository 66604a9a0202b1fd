"""The v2 REST API: the seed's integration guide, scopes, tenancy, idempotency, audit."""

import io
import json

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client

from loyalty import api_keys, services
from loyalty.models import (
    ApiRequestLog,
    Coupon,
    HeldAward,
    LedgerEntry,
    Member,
    Store,
)

from .factories import StoreFactory

pytestmark = pytest.mark.django_db


class Api:
    """A test client speaking JSON with a bearer key, remembering how many calls it made."""

    def __init__(self, key: str | None):
        self.client = Client()
        self.key = key
        self.calls = 0

    def _headers(self, extra):
        headers = dict(extra or {})
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        return headers

    def get(self, path, headers=None):
        self.calls += 1
        return self.client.get(f"/api/v2{path}", headers=self._headers(headers))

    def post(self, path, body=None, headers=None):
        self.calls += 1
        return self.client.post(
            f"/api/v2{path}",
            data=json.dumps(body or {}),
            content_type="application/json",
            headers=self._headers(headers),
        )


@pytest.fixture(autouse=True)
def _fresh_rate_windows():
    cache.clear()


def key_for(team, preset="write", **kw):
    return api_keys.api_key_create(team=team, name=f"{preset} key", preset=preset, **kw)[1]


@pytest.fixture
def write_api(team_a):
    return Api(key_for(team_a, "write"))


@pytest.fixture
def read_api(team_a):
    return Api(key_for(team_a, "read"))


def test_the_seed_integration_guide_call_for_call(team_a, member_a, reward_a, write_api, read_api):
    StoreFactory(team=team_a, code="ST-NYC-01", name="New York")
    mid = member_a.public_id
    # POS: award points on a sale
    resp = write_api.post(
        f"/members/{mid}/points",
        {"amount": 120, "description": "In-store purchase · store ST-NYC-01 · txn 90871"},
    )
    assert resp.status_code == 200
    body = resp.json()
    assert body["transactionId"].startswith("txn_") and body["balance"] == 120
    # the member spends points on a reward in the portal; the cashier redeems the coupon
    coupon = services.reward_redeem(member=member_a, reward=reward_a)
    resp = write_api.post(f"/coupons/{coupon.public_id}/redeem")
    assert resp.status_code == 200 and resp.json()["status"] == "redeemed"
    assert write_api.post(f"/coupons/{coupon.public_id}/redeem").status_code == 404
    # read back balance, tier and coupons at the register
    ledger = read_api.get(f"/members/{mid}/points?limit=50").json()
    assert ledger["balance"] == 20 and ledger["total"] == 2
    assert [t["kind"] for t in ledger["transactions"]] == ["redeem", "earn"]  # newest first
    tier = read_api.get(f"/members/{mid}/tier").json()
    assert tier["tier"] == "Member" and tier["nextTier"] == "Gold"
    assert tier["pointsToNextTier"] == 1000 - 120
    coupons = read_api.get(f"/members/{mid}/coupons").json()["coupons"]
    assert coupons[0]["couponId"] == coupon.public_id and coupons[0]["status"] == "redeemed"
    # OMS: an order earns by the formula, a return claws back
    resp = write_api.post(
        f"/members/{mid}/purchases", {"orderId": "SO-44821", "amount": "240.00", "currency": "USD"}
    )
    assert resp.status_code == 200 and resp.json()["points"] == 240
    resp = write_api.post(
        f"/members/{mid}/purchases/SO-44821/refunds", {"amount": "60.00", "refundId": "RMA-1"}
    )
    assert resp.json()["points"] == -60 and resp.json()["balance"] == 20 + 240 - 60
    # ERP: reconcile stores and members with paging
    stores = read_api.get("/stores?limit=200&offset=0").json()
    assert stores == {
        "stores": [
            {
                "id": Store.objects.get().public_id,
                "code": "ST-NYC-01",
                "name": "New York",
                "status": "active",
            }
        ],
        "total": 1,
    }
    members = read_api.get("/members?status=active&limit=200&offset=0").json()
    assert members["total"] == 1 and members["members"][0]["id"] == mid


def test_members_paging_and_limits(team_a, read_api):
    for i in range(5):
        services.member_enroll(team=team_a, email=f"p{i}@example.com")
    page1 = read_api.get("/members?limit=2&offset=0").json()
    page3 = read_api.get("/members?limit=2&offset=4").json()
    assert page1["total"] == 5 and len(page1["members"]) == 2 and len(page3["members"]) == 1
    resp = read_api.get("/members?limit=201")
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "invalid_request"
    assert "limit" in resp.json()["error"]["message"]
    assert read_api.get("/members?status=gone").status_code == 400


def test_purchase_is_idempotent_on_order_id(member_a, write_api):
    path = f"/members/{member_a.public_id}/purchases"
    first = write_api.post(path, {"orderId": "A-1", "amount": "10.50"}).json()
    again = write_api.post(path, {"orderId": "A-1", "amount": "10.50"}).json()
    assert again["transactionId"] == first["transactionId"]
    conflict = write_api.post(path, {"orderId": "A-1", "amount": "99.00"})
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "idempotency_conflict"
    assert Member.objects.get(pk=member_a.pk).balance == 10


def test_purchase_in_an_unknown_currency_is_held(member_a, write_api):
    resp = write_api.post(
        f"/members/{member_a.public_id}/purchases",
        {"orderId": "J-1", "amount": "1000", "currency": "JPY"},
    )
    assert resp.status_code == 200
    assert resp.json()["transactionId"] is None
    assert resp.json()["held"]["reason"] == "no_rate"
    assert HeldAward.objects.get().currency == "JPY"


def test_idempotency_key_replays_the_first_answer(member_a, write_api):
    path = f"/members/{member_a.public_id}/points"
    headers = {"Idempotency-Key": "pos-90871"}
    first = write_api.post(path, {"amount": 50}, headers)
    write_api.post(path, {"amount": 5})  # a different sale in between
    again = write_api.post(path, {"amount": 50}, headers)
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    other = write_api.post(path, {"amount": 60}, headers)
    assert other.status_code == 409
    assert LedgerEntry.objects.filter(member=member_a).count() == 2
    entry = LedgerEntry.objects.get(public_id=first.json()["transactionId"])
    assert entry.idempotency_key.endswith(":pos-90871")


def test_negative_amount_needs_the_adjust_scope(team_a, member_a, write_api):
    path = f"/members/{member_a.public_id}/points"
    resp = write_api.post(path, {"amount": -10})
    assert resp.status_code == 403 and "points:adjust" in resp.json()["error"]["message"]
    adjust = Api(api_keys.api_key_create(team=team_a, name="adj", scopes=["points:adjust"])[1])
    resp = adjust.post(path, {"amount": -10, "description": "return"})
    assert resp.status_code == 200 and resp.json()["balance"] == -10


@pytest.mark.parametrize(
    "body, field",
    [
        ({"amount": 0}, "amount"),
        ({"amount": "lots"}, "amount"),
        ({"amount": 1.5}, "amount"),
        ({}, "amount"),
        ({"amount": 5, "description": "x" * 501}, "description"),
    ],
)
def test_bad_bodies_are_400_naming_the_field(member_a, write_api, body, field):
    resp = write_api.post(f"/members/{member_a.public_id}/points", body)
    assert resp.status_code == 400, resp.content
    assert resp.json()["error"]["field"] == field
    assert not LedgerEntry.objects.exists()


def test_malformed_json_is_a_json_400(member_a, write_api):
    resp = write_api.client.post(
        f"/api/v2/members/{member_a.public_id}/points",
        data="{oops",
        content_type="application/json",
        headers={"Authorization": f"Bearer {write_api.key}"},
    )
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "malformed_json"


def test_unknown_endpoint_is_a_json_404(write_api):
    resp = write_api.get("/nope")
    assert resp.status_code == 404 and resp["Content-Type"] == "application/json"


def test_blocked_member_is_a_clear_409(member_a, write_api):
    Member.objects.filter(pk=member_a.pk).update(status="blocked")
    resp = write_api.post(f"/members/{member_a.public_id}/points", {"amount": 5})
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "member_blocked"


# --- scopes ----------------------------------------------------------------------------------


def _endpoints(member, coupon):
    m = member.public_id
    return [
        ("post", f"/members/{m}/points", {"amount": 5}, "points:write"),
        ("get", f"/members/{m}/points", None, "points:read"),
        ("post", f"/members/{m}/purchases", {"orderId": "S-1", "amount": "5.00"}, "points:write"),
        ("post", f"/members/{m}/purchases/S-0/refunds", {"amount": "1.00"}, "points:write"),
        ("get", f"/members/{m}/tier", None, "members:read"),
        ("get", f"/members/{m}/coupons", None, "coupons:read"),
        ("post", f"/coupons/{coupon.public_id}/redeem", None, "coupons:redeem"),
        ("get", "/stores", None, "stores:read"),
        ("get", "/members", None, "members:read"),
    ]


@pytest.fixture
def scope_world(team_a, member_a, reward_a):
    services.points_award(member=member_a, key="order:S-0", source="api", amount="100.00")
    coupon = services.reward_redeem(member=member_a, reward=reward_a)
    return member_a, coupon


@pytest.mark.parametrize("who", ["read", "write", "revoked", "none", "garbage"])
def test_scope_matrix(team_a, scope_world, who):
    member, coupon = scope_world
    if who in ("read", "write"):
        api = Api(key_for(team_a, who))
    elif who == "revoked":
        key, plaintext = api_keys.api_key_create(team=team_a, name="old", preset="write")
        api_keys.api_key_revoke(key=key)
        api = Api(plaintext)
    else:
        api = Api(None if who == "none" else "fl_live_not-a-real-key")
    granted = set(api_keys.PRESETS.get(who, ()))
    for method, path, body, scope in _endpoints(member, coupon):
        resp = getattr(api, method)(path, body)
        if who in ("revoked", "none", "garbage"):
            expected = 401
        else:
            expected = 200 if scope in granted else 403
        assert resp.status_code == expected, (who, method, path, resp.content)
        assert "error" in resp.json() or expected == 200
        if expected == 403:
            assert scope in resp.json()["error"]["message"]
        if expected == 401:
            assert resp["WWW-Authenticate"] == "Bearer"
    assert ApiRequestLog.objects.count() == api.calls  # every call audited, once


# --- tenancy ---------------------------------------------------------------------------------


def test_team_b_key_gets_404_on_every_team_a_object_and_writes_nothing(team_b, scope_world):
    member, coupon = scope_world
    api = Api(api_keys.api_key_create(team=team_b, name="b", scopes=list(api_keys.SCOPES))[1])
    before = (LedgerEntry.objects.count(), Coupon.objects.filter(status="issued").count())
    for method, path, body, _ in _endpoints(member, coupon):
        if path in ("/stores", "/members"):
            resp = api.get(path)
            assert resp.status_code == 200 and resp.json()["total"] == 0
            continue
        resp = getattr(api, method)(path, body)
        # exactly what an id that never existed gets: nothing tells the two apart
        made_up = getattr(api, method)(
            path.replace(member.public_id, "mem_x").replace(coupon.public_id, "cpn_x"), body
        )
        assert resp.status_code == made_up.status_code == 404, (path, resp.content)
        assert resp.json() == made_up.json()
        assert member.email not in resp.content.decode()
    assert (LedgerEntry.objects.count(), Coupon.objects.filter(status="issued").count()) == before


# --- rate limit, audit, keys -----------------------------------------------------------------


def test_rate_limit_answers_429_with_retry_after(team_a, member_a):
    api = Api(key_for(team_a, "read", rate_limit=3))
    codes = [api.get(f"/members/{member_a.public_id}/tier").status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    resp = api.get("/stores")
    assert resp.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(resp["Retry-After"]) <= 60


def test_audit_rows_hold_no_bodies_or_secrets(team_a, member_a, write_api):
    write_api.post(
        f"/members/{member_a.public_id}/points",
        {"amount": 7, "description": "secret-description-sentinel"},
    )
    row = ApiRequestLog.objects.get()
    assert (row.method, row.status, row.team_id) == ("POST", 200, team_a.pk)
    assert row.path == f"/api/v2/members/{member_a.public_id}/points"
    assert row.client_ip == "127.0.0.1" and row.latency_ms >= 0
    dumped = json.dumps(list(ApiRequestLog.objects.values()), default=str)
    assert "sentinel" not in dumped and write_api.key not in dumped


def test_keys_are_stored_hashed_and_rotation_keeps_the_old_one_until_revoked(team_a, member_a):
    key, old_plain = api_keys.api_key_create(team=team_a, name="POS", preset="write")
    assert old_plain.startswith("fl_live_") and old_plain not in json.dumps(
        list(type(key).objects.values()), default=str
    )
    new_key, new_plain = api_keys.api_key_rotate(key=key)
    assert new_key.scopes == key.scopes and new_key.rotated_from == key
    path = f"/members/{member_a.public_id}/tier"
    assert Api(old_plain).get(path).status_code == 200
    assert Api(new_plain).get(path).status_code == 200
    api_keys.api_key_revoke(key=key)
    assert Api(old_plain).get(path).status_code == 401
    assert Api(new_plain).get(path).status_code == 200


def test_create_api_key_command_prints_only_the_key(team_a, member_a):
    out = io.StringIO()
    call_command(
        "create_api_key", "--team", "alpha", "--name", "ERP", "--preset", "read", stdout=out
    )
    plaintext = out.getvalue().strip()
    assert plaintext.startswith("fl_live_") and "\n" not in plaintext
    assert Api(plaintext).get("/members").status_code == 200


def test_schema_and_offline_docs(client):
    schema = client.get("/api/v2/schema/")
    assert schema.status_code == 200 and b"awardPoints" in schema.content
    docs = client.get("/api/v2/docs/").content.decode()
    assert "swagger-ui" in docs and "cdn" not in docs.lower() and "//unpkg" not in docs


def test_award_endpoint_query_count_stays_constant(member_a, write_api, django_assert_num_queries):
    path = f"/members/{member_a.public_id}/points"
    write_api.post(path, {"amount": 5})  # warm-up: the key's last-used stamp is written once
    with django_assert_num_queries(QUERIES_PER_AWARD):
        write_api.post(path, {"amount": 5})
    LedgerEntry.objects.bulk_create(
        LedgerEntry(
            team_id=member_a.team_id,
            member=member_a,
            points=0,
            kind="adjust",
            source="api",
            idempotency_key=f"filler-{i}",
        )
        for i in range(300)
    )
    with django_assert_num_queries(QUERIES_PER_AWARD):
        write_api.post(path, {"amount": 5})


# key, member, savepoint, lock, key re-use checks (entry, hold), entry, tier, balance, outbox,
# release, answer's balance, audit row: a new query on this hot path must be a deliberate change
QUERIES_PER_AWARD = 13


def test_purchase_with_vesting_is_pending_and_a_refund_cancels(team_a, member_a, write_api):
    team_a.vesting_days = 14
    team_a.save()
    path = f"/members/{member_a.public_id}/purchases"
    body = write_api.post(path, {"orderId": "V-1", "amount": "50.00"}).json()
    assert body["transactionId"] is None and body["points"] == 0
    assert body["pending"]["points"] == 50 and body["pending"]["reason"] == "vesting"
    resp = write_api.post(f"{path}/V-1/refunds", {"amount": "50.00", "refundId": "R-1"})
    assert resp.status_code == 200 and resp.json()["points"] == 0
    assert HeldAward.objects.get().status == "voided"
    assert Member.objects.get(pk=member_a.pk).balance == 0
