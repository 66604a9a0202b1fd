"""Console → Webhooks: endpoints added (the signing secret shown once), disabled, deleted, their
delivery log and replay, the e-mail automation switches; and who may see or do what (Alice
admins team A, Bob only reviews for it, Charlie is team B)."""

import io
import json
import logging
import re

import pytest
from django.core.management import call_command
from django.utils import timezone

from events import services, tasks
from events.models import EmailAutomation, EventDelivery, WebhookEndpoint
from loyalty.models import OutboxEvent

pytestmark = pytest.mark.django_db

LIST = "/console/webhooks/"
NEW = "/console/webhooks/new/"
AUTOMATIONS = "/console/webhooks/automations/"
SECRET = re.compile(r'data-testid="signing-secret">(whsec_[A-Za-z0-9_-]+)<')


@pytest.fixture
def endpoint_a(team_a, settings):
    settings.EVENTS_REQUIRE_HTTPS = True
    endpoint, secret = services.endpoint_create(team=team_a, url="https://hooks.alpha.test/flash")
    endpoint.secret = secret
    return endpoint


@pytest.fixture
def delivery_a(endpoint_a, team_a):
    event = OutboxEvent.objects.create(
        team=team_a, event_type="purchase.first", payload={"memberId": "mem_1", "points": 5}
    )
    return EventDelivery.objects.create(
        endpoint=endpoint_a,
        event=event,
        state="failed",
        attempts=6,
        last_status=500,
        last_error="HTTP 500: upstream exploded",
    )


def pages(endpoint):
    base = f"{LIST}{endpoint.public_id}/"
    return [LIST, NEW, AUTOMATIONS, base, f"{base}delete/"]


def posts(endpoint, delivery):
    base = f"{LIST}{endpoint.public_id}/"
    return [
        f"{base}disable/",
        f"{base}enable/",
        f"{base}delete/",
        f"{base}deliveries/{delivery.pk}/replay/",
    ]


def create(client, **data):
    body = {"url": "https://hooks.alpha.test/new", "scope": "all"}
    body.update(data)
    return client.post(NEW, {k: v for k, v in body.items() if v is not None})


def shown_secret(response) -> str:
    match = SECRET.search(response.content.decode())
    assert match, "the signing secret is not on the page"
    return match.group(1)


# --- add: the secret is shown once, only sealed at rest ---------------------------------------


def test_adding_an_endpoint_shows_its_secret_once(client, alice, team_a, caplog):
    caplog.set_level(logging.DEBUG)
    client.force_login(alice)
    form = client.get(NEW).content.decode()
    assert 'name="url"' in form and 'name="scope"' in form and 'name="event_types"' in form
    assert 'value="purchase.first"' in form
    assert re.search(r'value="all"[^>]* checked', form)

    r = create(client)
    assert r.status_code == 200 and not r.has_header("Location")
    assert "no-store" in r["Cache-Control"] and r["Referrer-Policy"] == "no-referrer"
    html = r.content.decode()
    assert "it will not be shown again" in html
    secret = shown_secret(r)
    assert html.count(secret) == 1
    assert "X-Flash-Signature" in html and "sha256=" in html  # how to verify, on the page

    ep = WebhookEndpoint.objects.get()
    assert (ep.team, ep.url, ep.event_types, ep.active) == (
        team_a,
        "https://hooks.alpha.test/new",
        [],
        True,
    )
    assert ep.secret_hint == secret[-4:]
    assert services.endpoint_secret(endpoint=ep) == secret
    dump = io.StringIO()
    call_command("dumpdata", "events", stdout=dump)
    assert secret not in dump.getvalue()
    assert secret not in json.dumps(list(WebhookEndpoint.objects.values()), default=str)

    # Nowhere to get it back from: not the session, a cookie, a log or any page.
    session = client.session
    assert secret not in json.dumps({k: session[k] for k in session.keys()}, default=str)
    assert all(secret not in c.value for c in client.cookies.values())
    assert secret not in caplog.text
    for url in pages(ep):
        page = client.get(url).content.decode()
        assert secret not in page, url
    listing = client.get(LIST).content.decode()
    assert f"whsec_…{ep.secret_hint}" in listing and "https://hooks.alpha.test/new" in listing


def test_event_types_can_be_chosen(client, alice):
    client.force_login(alice)
    create(client, scope="selected", event_types=["purchase.repeat", "member.enrolled"])
    assert WebhookEndpoint.objects.get().event_types == ["member.enrolled", "purchase.repeat"]
    detail = client.get(f"{LIST}{WebhookEndpoint.objects.get().public_id}/").content.decode()
    assert "<code>member.enrolled</code>" in detail and "All events" not in detail


@pytest.mark.parametrize(
    "data, message",
    [
        ({"url": ""}, "Enter the URL Flash should POST events to."),
        ({"url": "not a url"}, "Enter a full URL"),
        ({"url": "ftp://hooks.alpha.test/x"}, "Enter a full http:// or https:// URL"),
        ({"url": "http://hooks.alpha.test/x"}, "Use an https:// URL"),
        ({"scope": "selected"}, "Tick at least one event type"),
        ({"event_types": ["member.enrolled"]}, "Untick these"),
        ({"scope": "selected", "event_types": ["nope.never"]}, "Select a valid choice"),
    ],
)
def test_bad_input_is_a_clear_form_error_and_creates_nothing(
    client, alice, settings, data, message
):
    settings.EVENTS_REQUIRE_HTTPS = True
    client.force_login(alice)
    r = create(client, **data)
    assert r.status_code == 200
    assert message in r.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_plain_http_is_allowed_only_when_https_is_not_required(client, alice, settings):
    client.force_login(alice)
    settings.EVENTS_REQUIRE_HTTPS = False
    assert "must use" not in client.get(NEW).content.decode()
    r = create(client, url="http://127.0.0.1:8001/hook")
    assert r.status_code == 200 and shown_secret(r)
    assert WebhookEndpoint.objects.get().url == "http://127.0.0.1:8001/hook"


def test_https_is_required_by_default_with_debug_off(settings):
    # The test settings run with DEBUG off, like production: EVENTS_REQUIRE_HTTPS = not DEBUG.
    assert settings.DEBUG is False and settings.EVENTS_REQUIRE_HTTPS is True


# --- list, disable / enable, delete -----------------------------------------------------------


def test_list_shows_the_teams_endpoints_and_nothing_of_other_teams(
    client, alice, charlie, team_b, endpoint_a
):
    services.endpoint_create(team=team_b, url="https://hooks.beta.test/b")
    client.force_login(alice)
    html = client.get(LIST).content.decode()
    assert "https://hooks.alpha.test/flash" in html and "hooks.beta.test" not in html
    assert "active" in html and "All events" in html
    client.force_login(charlie)
    html = client.get(LIST).content.decode()
    assert "hooks.beta.test" in html and "hooks.alpha.test" not in html


def test_disable_and_enable(client, alice, endpoint_a):
    client.force_login(alice)
    base = f"{LIST}{endpoint_a.public_id}/"
    assert client.get(f"{base}disable/").status_code == 405  # changes only by POST
    r = client.post(f"{base}disable/", follow=True)
    assert "Disabled https://hooks.alpha.test/flash" in r.content.decode()
    assert WebhookEndpoint.objects.get().active is False
    assert "disabled" in client.get(LIST).content.decode()
    client.post(f"{base}enable/")
    assert WebhookEndpoint.objects.get().active is True


def test_delete_asks_first_then_removes_the_endpoint_and_its_log(client, alice, delivery_a):
    client.force_login(alice)
    url = f"{LIST}{delivery_a.endpoint.public_id}/delete/"
    page = client.get(url).content.decode()
    assert "cannot be undone" in page
    assert WebhookEndpoint.objects.exists()
    r = client.post(url)
    assert r.status_code == 302 and r["Location"] == LIST
    assert not WebhookEndpoint.objects.exists() and not EventDelivery.objects.exists()
    assert client.get(url).status_code == 404


# --- delivery log and replay ------------------------------------------------------------------


def test_delivery_log_shows_each_attempts_outcome(client, alice, delivery_a):
    client.force_login(alice)
    html = client.get(f"{LIST}{delivery_a.endpoint.public_id}/").content.decode()
    row = html[html.index(f'id="delivery-{delivery_a.pk}"') :]
    row = row[: row.index("</tr>")]
    assert "purchase.first" in row and f"#{delivery_a.event_id}" in row
    assert "badge-failed" in row and ">6<" in row and ">500<" in row
    assert "HTTP 500: upstream exploded" in row
    assert "Replay" in row and 'method="post"' in row


def test_delivery_log_is_paginated_fifty_a_page(client, alice, endpoint_a, team_a):
    events = OutboxEvent.objects.bulk_create(
        [OutboxEvent(team=team_a, event_type="points.awarded", payload={}) for _ in range(51)]
    )
    EventDelivery.objects.bulk_create(
        [EventDelivery(endpoint=endpoint_a, event=e, next_attempt_at=None) for e in events]
    )
    client.force_login(alice)
    base = f"{LIST}{endpoint_a.public_id}/"
    first = client.get(base).content.decode()
    assert first.count('id="delivery-') == 50 and "Page 1 of 2" in first
    second = client.get(f"{base}?page=2").content.decode()
    assert second.count('id="delivery-') == 1


def test_replay_requeues_the_delivery_now(
    client, alice, delivery_a, django_capture_on_commit_callbacks, monkeypatch
):
    queued = []
    monkeypatch.setattr(tasks.deliver, "delay", lambda pk: queued.append(pk))
    client.force_login(alice)
    url = f"{LIST}{delivery_a.endpoint.public_id}/deliveries/{delivery_a.pk}/replay/"
    assert client.get(url).status_code == 405
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(url, {"page": "1"})
    assert r.status_code == 302
    assert r["Location"] == f"{LIST}{delivery_a.endpoint.public_id}/?page=1"
    d = EventDelivery.objects.get()
    assert (d.state, d.attempts) == ("pending", 0)
    assert d.next_attempt_at <= timezone.now()
    assert queued == [d.pk]  # the delivery's id, nothing else
    assert "Queued purchase.first" in client.get(r["Location"]).content.decode()


# --- e-mail automations -----------------------------------------------------------------------


def test_automations_are_off_until_switched_on(client, alice, team_a, team_b):
    client.force_login(alice)
    page = client.get(AUTOMATIONS).content.decode()
    for kind in ("welcome", "post_purchase", "cross_sell"):
        assert f'value="{kind}"' in page
    assert "checked" not in page

    r = client.post(AUTOMATIONS, {"enabled": ["welcome", "cross_sell"]}, follow=True)
    assert "E-mail automations saved" in r.content.decode()
    on = dict(EmailAutomation.objects.filter(team=team_a).values_list("kind", "enabled"))
    assert on == {"welcome": True, "post_purchase": False, "cross_sell": True}
    assert not EmailAutomation.objects.filter(team=team_b).exists()
    assert client.get(AUTOMATIONS).content.decode().count("checked") == 2
    assert client.get(LIST).content.decode().count("badge-active") == 2

    client.post(AUTOMATIONS, {})  # nothing ticked: all off
    assert not EmailAutomation.objects.filter(enabled=True).exists()


# --- who may see or do what -------------------------------------------------------------------


def test_nav_links_to_webhooks_for_admins_only(client, alice, bob):
    client.force_login(alice)
    assert f'href="{LIST}"' in client.get("/console/").content.decode()
    client.force_login(bob)
    assert f'href="{LIST}"' not in client.get("/console/").content.decode()


def test_anonymous_is_sent_to_login(client, delivery_a):
    for url in pages(delivery_a.endpoint):
        r = client.get(url)
        assert r.status_code == 302 and r["Location"].startswith("/admin/login/?next="), url
    for url in posts(delivery_a.endpoint, delivery_a):
        assert client.post(url).status_code == 302, url
    assert WebhookEndpoint.objects.get().active is True


def test_bob_the_reviewer_gets_403_on_every_page_and_post(client, bob, delivery_a):
    client.force_login(bob)
    for url in pages(delivery_a.endpoint):
        r = client.get(url)
        assert r.status_code == 403, url
        assert "or an admin can see or manage webhooks" in r.content.decode()
    for url in posts(delivery_a.endpoint, delivery_a):
        assert client.post(url).status_code == 403, url
    assert client.post(NEW, {"url": "https://evil.test/x", "scope": "all"}).status_code == 403
    assert client.post(AUTOMATIONS, {"enabled": ["welcome"]}).status_code == 403
    assert WebhookEndpoint.objects.count() == 1 and WebhookEndpoint.objects.get().active
    assert EventDelivery.objects.get().state == "failed"
    assert not EmailAutomation.objects.exists()


def test_charlie_gets_404_on_team_a_endpoints_and_cannot_touch_them(
    client, charlie, delivery_a, team_b
):
    client.force_login(charlie)
    ep = delivery_a.endpoint
    for url in pages(ep)[3:]:
        assert client.get(url).status_code == 404, url
    for url in posts(ep, delivery_a):
        assert client.post(url).status_code == 404, url
    assert WebhookEndpoint.objects.get().active is True
    assert EventDelivery.objects.get().state == "failed"
    # Nor can he reach A's delivery through an endpoint of his own.
    own, _ = services.endpoint_create(team=team_b, url="https://hooks.beta.test/b")
    url = f"{LIST}{own.public_id}/deliveries/{delivery_a.pk}/replay/"
    assert client.post(url).status_code == 404
    # What he creates belongs to team B, whatever he sends.
    create(client, url="https://hooks.beta.test/c", team="alpha")
    assert WebhookEndpoint.objects.get(url="https://hooks.beta.test/c").team == team_b


def test_superuser_manages_any_teams_webhooks(client, delivery_a, django_user_model):
    root = django_user_model.objects.create_superuser("root@flash.test", password="pw-root-123")
    client.force_login(root)
    client.post("/console/team/", {"team": "alpha"})
    assert client.get(f"{LIST}{delivery_a.endpoint.public_id}/").status_code == 200


# --- in a real browser ------------------------------------------------------------------------


def fits_horizontally(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_alice_adds_an_endpoint_in_the_browser_and_it_fits_a_phone(
    phone, live_server, alice, team_a, settings
):
    from playwright.sync_api import expect

    from .browser_fixtures import ARTIFACTS, staff_sign_in

    settings.EVENTS_REQUIRE_HTTPS = True
    page = phone
    staff_sign_in(page, "alice@alpha.test")
    page.goto(LIST)
    expect(page.get_by_role("heading", name="Webhooks", exact=True)).to_be_visible()
    assert fits_horizontally(page)
    page.get_by_role("link", name="New endpoint").click()
    page.get_by_label("Endpoint URL").fill("https://hooks.alpha.test/a-rather-long/path/flash")
    page.get_by_label("Only the events ticked below").check()
    page.get_by_label("purchase.first · A member's first purchase").check()
    page.get_by_role("button", name="Add endpoint").click()

    secret = page.get_by_test_id("signing-secret").inner_text()
    assert secret.startswith("whsec_")
    assert fits_horizontally(page)
    page.screenshot(path=ARTIFACTS / "webhooks-created-phone.png", full_page=True)

    ep = WebhookEndpoint.objects.get()
    assert ep.event_types == ["purchase.first"]
    event = OutboxEvent.objects.create(team=team_a, event_type="purchase.first", payload={})
    EventDelivery.objects.create(
        endpoint=ep,
        event=event,
        attempts=2,
        last_status=503,
        last_error="HTTP 503: busy",
        next_attempt_at=timezone.now(),
    )
    page.get_by_role("link", name="I have copied it").click()
    expect(page.get_by_role("heading", name="Deliveries")).to_be_visible()
    expect(page.get_by_text("HTTP 503: busy")).to_be_visible()
    assert secret not in page.content()
    page.screenshot(path=ARTIFACTS / "webhooks-detail-phone.png", full_page=True)
    assert fits_horizontally(page)  # the log table scrolls inside its card
    page.get_by_role("button", name="Disable").click()
    expect(page.get_by_text("Disabled https://hooks.alpha.test")).to_be_visible()
    page.goto(AUTOMATIONS)
    page.get_by_label("Welcome e-mail on enrollment").check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("E-mail automations saved")).to_be_visible()
    assert fits_horizontally(page)
    page.goto(LIST)
    page.screenshot(path=ARTIFACTS / "webhooks-list-phone.png", full_page=True)
    assert EmailAutomation.objects.get(team=team_a, kind="welcome").enabled


def test_every_event_the_ledger_emits_can_be_picked_in_the_console():
    import re
    from pathlib import Path

    from events.catalog import EVENT_TYPE_NAMES
    from loyalty import services

    source = Path(services.__file__).read_text()
    emitted = set(re.findall(r'_emit\(\s*[\w.]+,\s*"([a-z_]+\.[a-z_]+)"', source))
    assert len(emitted) >= 10  # the pattern still finds the calls
    assert emitted <= EVENT_TYPE_NAMES, emitted - EVENT_TYPE_NAMES
