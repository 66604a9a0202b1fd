"""Console → API keys: created and shown once, listed, rotated, revoked, their activity; and
who may see or do what (Alice admins team A, Bob only reviews for it, Charlie is team B)."""

import hashlib
import json
import logging
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client

from loyalty import api_keys
from loyalty.models import ApiKey, ApiRequestLog

pytestmark = pytest.mark.django_db

LIST = "/console/api-keys/"
NEW = "/console/api-keys/new/"
SECRET = re.compile(r'data-testid="plaintext-key">(fl_live_[A-Za-z0-9_-]+)<')


@pytest.fixture(autouse=True)
def _fresh_rate_windows():
    cache.clear()


@pytest.fixture
def key_a(team_a, alice):
    """Team A's POS key, made through the service; its plaintext in ``key_a.plaintext``."""
    key, plaintext = api_keys.api_key_create(
        team=team_a, name="Store POS", preset="write", created_by=alice
    )
    key.plaintext = plaintext
    return key


def pages(key):
    base = f"{LIST}{key.public_id}/"
    return [LIST, NEW, base, f"{base}rotate/", f"{base}revoke/"]


def api_get(plaintext, path="/members"):
    return Client().get(f"/api/v2{path}", headers={"Authorization": f"Bearer {plaintext}"})


def create(client, **data):
    """POSTs the create form (read preset, 600/min unless told) and returns the response."""
    body = {"name": "ERP", "preset": "read", "rate_limit": "600"}
    body.update(data)
    return client.post(NEW, {k: v for k, v in body.items() if v is not None})


def shown_secret(response) -> str:
    match = SECRET.search(response.content.decode())
    assert match, "the new key is not on the page"
    return match.group(1)


# --- create: the plaintext is shown once, only its hash is kept -------------------------------


def test_create_shows_the_key_once_and_keeps_only_its_hash(client, alice, team_a, caplog):
    caplog.set_level(logging.DEBUG)
    client.force_login(alice)
    form = client.get(NEW).content.decode()
    for field in ('name="name"', 'name="preset"', 'name="scopes"', 'name="rate_limit"'):
        assert field in form
    assert 'value="600"' in form  # the default rate limit

    r = create(client, name="Store POS")
    # Rendered in the POST response itself: no redirect, so no URL ever carries it.
    assert r.status_code == 200 and not r.has_header("Location")
    assert "no-store" in r["Cache-Control"]
    html = r.content.decode()
    assert "it will not be shown again" in html
    plaintext = shown_secret(r)
    assert html.count(plaintext) == 1

    key = ApiKey.objects.get()
    assert (key.team, key.name, key.created_by, key.rate_limit) == (team_a, "Store POS", alice, 600)
    assert key.key_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    assert key.prefix == plaintext[:12]
    assert plaintext not in json.dumps(list(ApiKey.objects.values()), default=str)

    # Nowhere to get it back from: not the session, not a cookie, not a log, not a page.
    session = client.session
    assert plaintext not in json.dumps({k: session[k] for k in session.keys()}, default=str)
    assert all(plaintext not in c.value for c in client.cookies.values())
    assert plaintext not in caplog.text
    listing = client.get(LIST).content.decode()
    assert f"{key.prefix}…" in listing and "Store POS" in listing
    assert plaintext not in listing
    assert plaintext not in client.get(f"{LIST}{key.public_id}/").content.decode()
    assert plaintext not in client.get(f"{LIST}{key.public_id}/rotate/").content.decode()


def test_the_created_key_works_against_the_api(client, alice, member_a):
    client.force_login(alice)
    plaintext = shown_secret(create(client))
    r = api_get(plaintext)
    assert r.status_code == 200
    assert [m["id"] for m in r.json()["members"]] == [member_a.public_id]


@pytest.mark.parametrize("preset", ["read", "write"])
def test_presets_set_the_scopes(client, alice, preset):
    client.force_login(alice)
    create(client, preset=preset)
    assert set(ApiKey.objects.get().scopes) == set(api_keys.PRESETS[preset])


def test_custom_scopes_come_from_the_checkboxes(client, alice, member_a):
    client.force_login(alice)
    plaintext = shown_secret(
        create(client, preset="custom", scopes=["stores:read", "points:read"], rate_limit="42")
    )
    key = ApiKey.objects.get()
    assert key.scopes == ["points:read", "stores:read"] and key.rate_limit == 42
    assert api_get(plaintext, "/stores").status_code == 200
    assert api_get(plaintext, f"/members/{member_a.public_id}/points").status_code == 200
    assert api_get(plaintext, "/members").status_code == 403  # no members:read


@pytest.mark.parametrize(
    "data, message",
    [
        ({"name": ""}, "Give the key a name"),
        ({"name": "   "}, "Give the key a name"),
        ({"name": "x" * 101}, "at most 100 characters"),
        ({"preset": "custom"}, "Tick at least one scope"),
        ({"preset": "custom", "scopes": ["admin:everything"]}, "Select a valid choice"),
        ({"preset": "read", "scopes": ["points:write"]}, "Untick these scopes or choose Custom"),
        ({"preset": "root"}, "Select a valid choice"),
        ({"preset": None}, "Choose the key&#x27;s access"),
        ({"rate_limit": "0"}, "at least 1 request per minute"),
        ({"rate_limit": "-5"}, "at least 1 request per minute"),
        ({"rate_limit": "fast"}, "whole number of requests per minute"),
        ({"rate_limit": "1.5"}, "whole number of requests per minute"),
        ({"rate_limit": ""}, "Enter a rate limit"),
        ({"rate_limit": "99999999999"}, "at most 1000000"),
    ],
)
def test_bad_input_is_a_clear_form_error_and_creates_nothing(client, alice, data, message):
    client.force_login(alice)
    r = create(client, **data)
    html = r.content.decode()
    assert r.status_code == 200
    assert message in html
    assert 'role="alert"' in html and "correct the highlighted field" in html
    assert "aria-invalid" in html or "<fieldset aria-describedby" in html
    assert not SECRET.search(html)
    assert ApiKey.objects.count() == 0


def test_form_keeps_what_was_typed_after_an_error(client, alice):
    client.force_login(alice)
    html = create(client, name="Nightly ERP", rate_limit="zero").content.decode()
    assert 'value="Nightly ERP"' in html


# --- list -------------------------------------------------------------------------------------


def test_list_shows_the_teams_keys_and_nothing_of_other_teams(client, alice, team_b, key_a):
    revoked, _ = api_keys.api_key_create(team=key_a.team, name="Old ERP", preset="read")
    api_keys.api_key_revoke(key=revoked)
    other, _ = api_keys.api_key_create(team=team_b, name="Beta POS", preset="read")
    api_get(key_a.plaintext)  # sets last used
    client.force_login(alice)
    html = client.get(LIST).content.decode()
    assert "Store POS" in html and f"{key_a.prefix}…" in html
    assert "write preset" in html and "<code>points:write</code>" in html
    assert "600 / minute" in html and "by alice@alpha.test" in html
    assert "Never" in html  # the revoked key was never used
    assert html.count("badge-active") == 1 and html.count("badge-revoked") == 1
    for action in ("", "rotate/", "revoke/"):
        assert f"{LIST}{key_a.public_id}/{action}" in html
    # A revoked key offers its activity, not rotate or revoke.
    assert f"{LIST}{revoked.public_id}/" in html
    assert f"{LIST}{revoked.public_id}/revoke/" not in html
    assert "Beta POS" not in html and other.public_id not in html
    # Public ids in URLs, never database pks.
    assert f"{LIST}{key_a.pk}/" not in html
    assert client.get(f"{LIST}{key_a.pk}/").status_code == 404


def test_nav_links_to_api_keys_for_admins_only(client, alice, bob):
    client.force_login(alice)
    assert f'href="{LIST}"' in client.get("/console/").content.decode()
    client.force_login(bob)
    assert f'href="{LIST}"' not in client.get("/console/").content.decode()


# --- rotate and revoke ------------------------------------------------------------------------


def test_rotate_keeps_both_working_until_the_old_one_is_revoked(client, alice, member_a, key_a):
    client.force_login(alice)
    confirm = client.get(f"{LIST}{key_a.public_id}/rotate/")
    assert (
        confirm.status_code == 200
        and "keeps working until you revoke it" in confirm.content.decode()
    )
    assert ApiKey.objects.count() == 1  # looking at the confirmation changes nothing

    r = client.post(f"{LIST}{key_a.public_id}/rotate/")
    assert r.status_code == 200 and "no-store" in r["Cache-Control"]
    html = r.content.decode()
    assert "it will not be shown again" in html and "keeps working until you revoke it" in html
    new_plain = shown_secret(r)
    new_key = ApiKey.objects.get(rotated_from=key_a)
    assert new_key.scopes == key_a.scopes and new_key.rate_limit == key_a.rate_limit
    assert new_key.created_by == alice and new_key.name == key_a.name
    assert new_plain not in json.dumps(list(ApiKey.objects.values()), default=str)
    assert api_get(key_a.plaintext).status_code == 200
    assert api_get(new_plain).status_code == 200

    confirm = client.get(f"{LIST}{key_a.public_id}/revoke/").content.decode()
    assert "cannot be undone" in confirm
    key_a.refresh_from_db()
    assert key_a.revoked_at is None
    r = client.post(f"{LIST}{key_a.public_id}/revoke/", follow=True)
    assert f"Revoked Store POS ({key_a.prefix}…)" in r.content.decode()
    key_a.refresh_from_db()
    assert key_a.revoked_at is not None
    assert api_get(key_a.plaintext).status_code == 401
    assert api_get(new_plain).status_code == 200
    assert new_plain not in client.get(LIST).content.decode()


def test_revoking_twice_says_so(client, alice, key_a):
    client.force_login(alice)
    client.post(f"{LIST}{key_a.public_id}/revoke/")
    key_a.refresh_from_db()
    first = key_a.revoked_at
    r = client.post(f"{LIST}{key_a.public_id}/revoke/", follow=True)
    assert "already revoked" in r.content.decode()
    key_a.refresh_from_db()
    assert key_a.revoked_at == first


def test_a_revoked_key_cannot_be_rotated(client, alice, key_a):
    api_keys.api_key_revoke(key=key_a)
    client.force_login(alice)
    assert "cannot be rotated" in client.get(f"{LIST}{key_a.public_id}/rotate/").content.decode()
    r = client.post(f"{LIST}{key_a.public_id}/rotate/", follow=True)
    html = r.content.decode()
    assert "A revoked key cannot be rotated" in html and not SECRET.search(html)
    assert ApiKey.objects.count() == 1


# --- activity ---------------------------------------------------------------------------------


def test_activity_lists_the_calls_made_with_the_key(client, alice, team_a, member_a, key_a):
    other, other_plain = api_keys.api_key_create(team=team_a, name="Other", preset="read")
    assert api_get(key_a.plaintext, "/members").status_code == 200
    assert api_get(key_a.plaintext, "/stores").status_code == 200
    assert api_get(key_a.plaintext, "/members/mem_nobody/tier").status_code == 404
    api_get(other_plain, "/coupons-of-another-key")
    client.force_login(alice)
    html = client.get(f"{LIST}{key_a.public_id}/").content.decode()
    rows = re.findall(
        r'<td class="mono small">(\w+)</td>\s*<td class="mono small path">([^<]+)</td>\s*'
        r'<td class="num[^"]*">(\d+)</td>',
        html,
    )
    assert rows == [
        ("GET", "/api/v2/members/mem_nobody/tier", "404"),
        ("GET", "/api/v2/stores", "200"),
        ("GET", "/api/v2/members", "200"),
    ]
    assert "3 calls, newest first" in html and "127.0.0.1" in html
    assert "coupons-of-another-key" not in html


def test_activity_is_paginated_fifty_a_page(client, alice, key_a):
    for n in range(60):
        ApiRequestLog.objects.create(
            team=key_a.team, api_key=key_a, method="GET", path=f"/api/v2/probe/{n:02d}",
            status=200, latency_ms=n, client_ip="10.0.0.7",
        )  # fmt: skip
    client.force_login(alice)
    first = client.get(f"{LIST}{key_a.public_id}/").content.decode()
    assert first.count("/api/v2/probe/") == 50
    assert "/api/v2/probe/59" in first and "/api/v2/probe/10" in first
    assert "/api/v2/probe/09" not in first
    assert "Page 1 of 2" in first and "60 calls" in first
    second = client.get(f"{LIST}{key_a.public_id}/?page=2").content.decode()
    assert second.count("/api/v2/probe/") == 10
    assert "Page 2 of 2" in second
    assert re.findall(r"/api/v2/probe/(\d+)", second) == [f"{n:02d}" for n in range(9, -1, -1)]


# --- who may ----------------------------------------------------------------------------------


def test_anonymous_is_sent_to_login(client, key_a):
    for url in pages(key_a):
        r = client.get(url)
        assert r.status_code == 302 and r["Location"] == f"/admin/login/?next={url}"
    for url in [NEW, *pages(key_a)[3:]]:
        assert client.post(url).status_code == 302
    assert ApiKey.objects.count() == 1
    assert api_get(key_a.plaintext).status_code == 200


def test_bob_the_reviewer_gets_403_on_every_page_and_post(client, bob, key_a):
    client.force_login(bob)
    for url in pages(key_a):
        r = client.get(url)
        assert r.status_code == 403, url
        assert "or an admin can see or manage API keys" in r.content.decode()
    assert create(client).status_code == 403
    for url in pages(key_a)[3:]:
        assert client.post(url).status_code == 403, url
    assert ApiKey.objects.count() == 1
    key_a.refresh_from_db()
    assert key_a.revoked_at is None


def test_charlie_gets_404_on_team_a_keys_and_cannot_revoke_them(client, charlie, team_b, key_a):
    client.force_login(charlie)
    for url in pages(key_a)[2:]:
        assert client.get(url).status_code == 404, url
        assert client.post(url).status_code in (404, 405), url
    for url in pages(key_a)[3:]:
        assert client.post(url).status_code == 404, url
    key_a.refresh_from_db()
    assert key_a.revoked_at is None and ApiKey.objects.count() == 1
    assert api_get(key_a.plaintext).status_code == 200
    listing = client.get(LIST)
    assert listing.status_code == 200
    assert "Store POS" not in listing.content.decode()
    # A key Charlie creates belongs to team B, whatever the form says.
    create(client, name="Beta ERP", team="alpha")
    assert ApiKey.objects.get(name="Beta ERP").team == team_b


def test_charlie_switching_to_team_a_is_refused(client, charlie, key_a):
    client.force_login(charlie)
    client.post("/console/team/", {"team": "alpha"})
    assert client.get(f"{LIST}{key_a.public_id}/").status_code == 404


def test_superuser_manages_any_teams_keys(client, key_a):
    root = get_user_model().objects.create_superuser("root@example.com", password="pw-root-123")
    client.force_login(root)
    client.post("/console/team/", {"team": "alpha"})
    assert "Store POS" in client.get(LIST).content.decode()
    assert client.get(f"{LIST}{key_a.public_id}/").status_code == 200
    client.post(f"{LIST}{key_a.public_id}/revoke/")
    key_a.refresh_from_db()
    assert key_a.revoked_at is not None
