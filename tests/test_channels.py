"""Settings → Online Shop and the channel JSON endpoints, against the platform emulator."""

import json

import pytest
from django.test import Client

from channels_app.models import Channel
from loyalty.models import Team

from .factories import MembershipFactory

pytestmark = pytest.mark.django_db
PAGE = "/console/settings/online-shop/"


def amazon_form(server, creds, **overrides):
    data = {
        "name": "Amazon US",
        "client_id": creds["client_id"],
        "region": "na",
        "marketplace_ids": " ".join(creds["marketplace_ids"]),
        "endpoint": f"{server.url}/amazon",
        "lwa_url": f"{server.url}/amazon/auth/o2/token",
        "client_secret": creds["client_secret"],
        "refresh_token": creds["refresh_token"],
    }
    data.update(overrides)
    return data


def tiktok_form(server, creds, **overrides):
    data = {
        "name": "TikTok Shop",
        "app_key": creds["app_key"],
        "api_base": f"{server.url}/tiktok",
        "auth_base": f"{server.url}/tiktok-auth",
        "app_secret": creds["app_secret"],
        "refresh_token": creds["refresh_token"],
    }
    data.update(overrides)
    return data


def shopify_json(server, creds, **overrides):
    body = {"shopDomain": creds["shop_domain"], "accessToken": creds["access_token"]}
    body.update(overrides)
    return body


@pytest.fixture
def admin_client(alice):
    client = Client()
    client.force_login(alice)
    return client


def post_json(client, path, body):
    return client.post(path, data=json.dumps(body), content_type="application/json")


# --- Save & Verify through the page ----------------------------------------------------------


def test_amazon_save_and_verify_shows_the_marketplaces(admin_client, sandbox_server, demo):
    resp = admin_client.post(
        f"{PAGE}amazon/save/", amazon_form(sandbox_server, demo["amazon"]), follow=True
    )
    assert resp.status_code == 200
    channel = Channel.objects.get(kind="amazon")
    assert channel.status == "connected" and channel.name == "Amazon US"
    body = resp.content.decode()
    assert "Verified and saved" in body
    for marketplace in channel.last_check["details"]["marketplaces"]:
        assert marketplace["id"] in body
    assert demo["amazon"]["client_secret"] not in body
    assert channel.secret("client_secret") == demo["amazon"]["client_secret"]


def test_a_wrong_secret_says_what_to_fix_and_saves_nothing(admin_client, sandbox_server, demo):
    wrong = "amzn1.oa2-cs.v1.WRONG-SENTINEL-0000000000000000000000000000"
    resp = admin_client.post(
        f"{PAGE}amazon/save/", amazon_form(sandbox_server, demo["amazon"], client_secret=wrong)
    )
    assert resp.status_code == 400
    body = resp.content.decode()
    assert "Amazon" in body and "Traceback" not in body
    assert wrong not in body and demo["amazon"]["refresh_token"] not in body
    assert not Channel.objects.exists()


def test_the_platform_down_during_save_saves_nothing(admin_client, sandbox_server, sandbox, demo):
    sandbox.set_fault("amazon", "lwaToken", "500", times=100)
    resp = admin_client.post(f"{PAGE}amazon/save/", amazon_form(sandbox_server, demo["amazon"]))
    assert resp.status_code == 400
    assert "try again" in resp.content.decode().lower()
    assert not Channel.objects.exists()


def test_failed_update_keeps_the_previous_working_credentials(admin_client, sandbox_server, demo):
    admin_client.post(f"{PAGE}amazon/save/", amazon_form(sandbox_server, demo["amazon"]))
    channel = Channel.objects.get()
    before = dict(channel.sealed_secrets)
    resp = admin_client.post(
        f"{PAGE}amazon/save/?edit={channel.public_id}",
        amazon_form(sandbox_server, demo["amazon"], client_secret="amzn1.oa2-cs.v1.nope-nope"),
    )
    assert resp.status_code == 400
    channel.refresh_from_db()
    assert channel.sealed_secrets == before and channel.status == "connected"
    # blank secrets on an edit keep the saved ones
    resp = admin_client.post(
        f"{PAGE}amazon/save/?edit={channel.public_id}",
        amazon_form(
            sandbox_server,
            demo["amazon"],
            client_secret="",
            refresh_token="",
            name="ignored on edit",
        ),
    )
    assert resp.status_code == 302
    channel.refresh_from_db()
    assert channel.secret("client_secret") == demo["amazon"]["client_secret"]


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("client_secret", "abc def", "spaces or line breaks"),
        ("refresh_token", "Atzr|abc\ndef", "spaces or line breaks"),
        ("refresh_token", "not-a-token", "Atzr|"),
        ("client_id", "wrong", "amzn1.application-oa2-client"),
        ("marketplace_ids", "US", "marketplace id"),
        ("endpoint", "ftp://x", "http(s) URL"),
    ],
)
def test_bad_input_is_a_clear_message(admin_client, sandbox_server, demo, field, value, message):
    resp = admin_client.post(
        f"{PAGE}amazon/save/", amazon_form(sandbox_server, demo["amazon"], **{field: value})
    )
    assert resp.status_code == 400 and message in resp.content.decode()
    assert not Channel.objects.exists()


def test_a_secret_pasted_with_a_trailing_newline_is_trimmed(admin_client, sandbox_server, demo):
    creds = demo["amazon"]
    resp = admin_client.post(
        f"{PAGE}amazon/save/",
        amazon_form(sandbox_server, creds, client_secret=f"  {creds['client_secret']}\n"),
    )
    assert resp.status_code == 302
    assert Channel.objects.get().secret("client_secret") == creds["client_secret"]


def test_tiktok_save_discovers_the_shop_cipher_and_keeps_the_rotated_token(
    admin_client, sandbox_server, demo
):
    creds = demo["tiktok"]
    resp = admin_client.post(f"{PAGE}tiktok/save/", tiktok_form(sandbox_server, creds))
    assert resp.status_code == 302, resp.content.decode()[:2000]
    channel = Channel.objects.get(kind="tiktok")
    assert channel.config["shop_cipher"] == creds["shop_cipher"]
    # TikTok rotated the refresh token during the check: the new one is what was kept
    assert channel.secret("refresh_token") != creds["refresh_token"]
    resp = admin_client.post(f"{PAGE}{channel.public_id}/ping/", follow=True)
    assert "verified" in resp.content.decode()
    channel.refresh_from_db()
    assert channel.status == "connected"


def test_plan_without_omnichannel_sees_upgrade_and_server_refuses(
    admin_client, team_a, sandbox_server, demo
):
    Team.objects.filter(pk=team_a.pk).update(plan="growth")
    page = admin_client.get(PAGE).content.decode()
    assert "Omnichannel plan" in page and "Save &amp; Verify" not in page
    resp = admin_client.post(f"{PAGE}amazon/save/", amazon_form(sandbox_server, demo["amazon"]))
    assert resp.status_code == 400 and "Omnichannel plan" in resp.content.decode()
    resp = post_json(
        admin_client, "/api/shopify/connect", shopify_json(sandbox_server, demo["shopify"])
    )
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "plan_required"
    assert not Channel.objects.exists()


def test_re_verify_of_revoked_credentials_marks_needs_attention(
    admin_client, amazon_channel, sandbox
):
    sandbox.set_fault("amazon", "lwaToken", "revoked", times=100)
    resp = admin_client.post(f"{PAGE}{amazon_channel.public_id}/ping/", follow=True)
    amazon_channel.refresh_from_db()
    assert amazon_channel.status == "needs_attention"
    assert amazon_channel.last_error and amazon_channel.last_error in resp.content.decode()


def test_disconnect_removes_the_connection(admin_client, amazon_channel):
    resp = admin_client.post(f"{PAGE}{amazon_channel.public_id}/disconnect/")
    assert resp.status_code == 302 and not Channel.objects.exists()


# --- JSON endpoints --------------------------------------------------------------------------


def test_shopify_json_connect_status_disconnect(admin_client, sandbox_server, demo):
    creds = demo["shopify"]
    # the emulator stands in for the store: its base URL is set on the channel by the page;
    # through JSON, connect first with the page's defaults pointed at it
    resp = post_json(
        admin_client,
        "/api/admin/channels",
        {
            "teamId": "alpha",
            "kind": "shopify",
            "name": "Demo store",
            "config": {
                "shop_domain": creds["shop_domain"],
                "api_base": sandbox_server.shopify_base(creds["shop_domain"]),
            },
            "secrets": {"access_token": creds["access_token"]},
        },
    )
    assert resp.status_code == 201, resp.content
    assert creds["access_token"] not in resp.content.decode()
    assert (
        resp.json()["channel"]["secrets"]["access_token"]["endsWith"] == creds["access_token"][-4:]
    )
    status = admin_client.get("/api/shopify/status").json()
    assert status["connected"] is True and status["shopDomain"] == creds["shop_domain"]
    assert status["shopName"]
    resp = post_json(
        admin_client,
        "/api/shopify/connect",
        shopify_json(sandbox_server, creds, accessToken="shpat_00000000000000000000000000000000"),
    )
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "check_failed"
    assert Channel.objects.get().secret("access_token") == creds["access_token"]
    assert post_json(admin_client, "/api/shopify/disconnect", {}).json() == {"connected": False}
    assert not Channel.objects.exists()


def test_admin_channel_ping_and_errors(admin_client, amazon_channel):
    resp = post_json(admin_client, f"/api/admin/channels/{amazon_channel.public_id}/ping", {})
    assert resp.status_code == 200 and resp.json()["channel"]["status"] == "connected"
    assert post_json(admin_client, "/api/admin/channels/ch_nope/ping", {}).status_code == 404
    bad = admin_client.post("/api/admin/channels", data="{oops", content_type="application/json")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "malformed_json"
    resp = post_json(admin_client, "/api/admin/channels", {"teamId": "alpha", "kind": "ebay"})
    assert resp.status_code == 400 and resp.json()["error"]["field"] == "kind"


def test_json_endpoints_need_csrf(alice, sandbox_server, demo):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    resp = post_json(client, "/api/shopify/connect", shopify_json(sandbox_server, demo["shopify"]))
    assert resp.status_code == 403 and not Channel.objects.exists()


# --- roles × teams ---------------------------------------------------------------------------


@pytest.fixture
def who(request, alice, bob, charlie):
    clients = {"alice": alice, "bob": bob, "charlie": charlie}
    if request.param == "anonymous":
        return request.param, Client()
    if request.param == "superuser":
        from .factories import UserFactory

        user = UserFactory(username="root@flash.test", is_superuser=True)
    else:
        user = clients[request.param]
    client = Client()
    client.force_login(user)
    return request.param, client


@pytest.mark.parametrize(
    "who", ["alice", "bob", "charlie", "anonymous", "superuser"], indirect=True
)
def test_role_and_team_matrix(who, amazon_channel, team_a, sandbox_server, demo):
    name, client = who
    ch = amazon_channel.public_id
    calls = [
        ("page", lambda: client.get(PAGE)),
        ("edit", lambda: client.get(f"{PAGE}?edit={ch}")),
        (
            "save",
            lambda: client.post(
                f"{PAGE}amazon/save/?edit={ch}", amazon_form(sandbox_server, demo["amazon"])
            ),
        ),
        ("ping", lambda: client.post(f"{PAGE}{ch}/ping/")),
        ("json_ping", lambda: post_json(client, f"/api/admin/channels/{ch}/ping", {})),
        (
            "json_create",
            lambda: post_json(
                client,
                "/api/admin/channels",
                {
                    "teamId": "alpha",
                    "kind": "amazon",
                    "name": "Second",
                    "config": {
                        k: v
                        for k, v in amazon_form(sandbox_server, demo["amazon"]).items()
                        if k not in ("client_secret", "refresh_token", "name")
                    },
                    "secrets": {
                        "client_secret": demo["amazon"]["client_secret"],
                        "refresh_token": demo["amazon"]["refresh_token"],
                    },
                },
            ),
        ),
        ("status", lambda: client.get("/api/shopify/status")),
        ("disconnect", lambda: client.post(f"{PAGE}{ch}/disconnect/")),
    ]
    expected = {
        "alice": {
            "page": 200,
            "edit": 200,
            "save": 302,
            "ping": 302,
            "json_ping": 200,
            "json_create": 201,
            "status": 200,
            "disconnect": 302,
        },
        "superuser": {
            "page": 200,
            "edit": 200,
            "save": 302,
            "ping": 302,
            "json_ping": 200,
            "json_create": 201,
            "status": 200,
            "disconnect": 302,
        },
        # a reviewer of team A: a 403 everywhere
        "bob": dict.fromkeys(
            ["page", "edit", "save", "ping", "disconnect", "json_ping", "json_create", "status"],
            403,
        ),
        # an admin of team B: his own page works, team A's objects are 404s
        "charlie": {
            "page": 200,
            "edit": 404,
            "save": 404,
            "ping": 404,
            "disconnect": 404,
            "json_ping": 404,
            "json_create": 404,
            "status": 200,
        },
        "anonymous": {
            "page": 302,
            "edit": 302,
            "save": 302,
            "ping": 302,
            "disconnect": 302,
            "json_ping": 401,
            "json_create": 401,
            "status": 401,
        },
    }[name]
    for label, call in calls:
        resp = call()
        assert resp.status_code == expected[label], (name, label, resp.status_code)
        if name in ("bob", "charlie", "anonymous"):
            assert "Amazon US" not in resp.content.decode() or label == "page"
    if name in ("bob", "charlie", "anonymous"):
        assert Channel.objects.filter(team=team_a).count() == 1
        assert Channel.objects.get(public_id=ch).status == "connected"


def test_charlie_page_lists_none_of_team_a_channels(charlie, amazon_channel):
    client = Client()
    client.force_login(charlie)
    for tab in ("shopify", "amazon", "tiktok"):
        body = client.get(f"{PAGE}?tab={tab}").content.decode()
        assert amazon_channel.public_id not in body


def test_team_admin_of_two_teams_acts_only_on_the_current_one(alice, team_b, amazon_channel):
    MembershipFactory(team=team_b, user=alice, role="org_admin")
    client = Client()
    client.force_login(alice)
    client.post("/console/team/", {"team": "beta"})
    assert client.get(f"{PAGE}?edit={amazon_channel.public_id}").status_code == 404


def test_a_failed_tiktok_re_verify_keeps_the_token_it_rotated(
    admin_client, tiktok_channel, sandbox
):
    """The refresh succeeds (rotating the refresh token), then the shops call fails: the new
    refresh token must be kept, or the channel would be locked out of TikTok for good."""
    sandbox.expire_access_tokens("tiktok")
    original = tiktok_channel.secret("refresh_token")
    sandbox.set_fault("tiktok", "getAuthorizedShops", "500", times=1)
    resp = admin_client.post(f"{PAGE}{tiktok_channel.public_id}/ping/", follow=True)
    assert "did not answer properly" in resp.content.decode()
    tiktok_channel.refresh_from_db()
    assert tiktok_channel.secret("refresh_token") != original
    assert tiktok_channel.status == "connected"  # a temporary fault needs no person
    resp = admin_client.post(f"{PAGE}{tiktok_channel.public_id}/ping/", follow=True)
    assert "verified" in resp.content.decode()
