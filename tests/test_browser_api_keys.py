"""Console → API keys in a real browser: Debian chromium driven by Playwright against the
live test server, the same set-up as tests/test_browser.py. Screenshots go to test-artifacts/."""

import json
import re
import urllib.request

import pytest
from playwright.sync_api import expect

from loyalty.models import ApiKey

from .browser_fixtures import ARTIFACTS, PHONE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def api_get(base_url: str, path: str, key: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{base_url}/api/v2{path}", headers={"Authorization": f"Bearer {key}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def fits_horizontally(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_alice_creates_a_key_sees_it_once_and_it_works(page, live_server, alice, member_a):
    page.goto("/admin/login/?next=/console/")
    page.get_by_label("E-mail").fill("alice@alpha.test")
    page.get_by_label("Password").fill("pw-staff-123")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/console/$"))

    page.get_by_role("link", name="API keys").click()
    expect(page.get_by_role("heading", name="API keys", exact=True)).to_be_visible()
    expect(page.get_by_text("No API keys yet")).to_be_visible()
    page.get_by_role("link", name="New API key").click()

    # Filled through labels and roles, which proves they are tied to the inputs.
    page.get_by_label("Name").fill("Store POS")
    page.get_by_label("Rate limit (requests per minute)").fill("0")
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_role("alert")).to_contain_text("correct the highlighted field")
    expect(page.get_by_label("Rate limit (requests per minute)")).to_have_attribute(
        "aria-invalid", "true"
    )
    assert ApiKey.objects.count() == 0
    page.screenshot(path=ARTIFACTS / "console-api-key-new-error.png", full_page=True)
    page.get_by_label("Rate limit (requests per minute)").fill("120")
    page.get_by_role("radio", name=re.compile("Read & write")).check()
    page.get_by_role("button", name="Create key").click()

    expect(page.get_by_role("alert")).to_contain_text("it will not be shown again")
    secret = page.get_by_test_id("plaintext-key")
    expect(secret).to_be_visible()
    plaintext = secret.inner_text().strip()
    assert re.fullmatch(r"fl_live_[A-Za-z0-9_-]{40,}", plaintext)
    page.screenshot(path=ARTIFACTS / "console-api-key-created.png", full_page=True)
    page.set_viewport_size(PHONE)
    assert fits_horizontally(page), "the new-key page overflows a phone screen"
    page.screenshot(path=ARTIFACTS / "console-api-key-created-phone.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 720})

    # The key works, from outside the browser, against the live server.
    status, body = api_get(live_server.url, "/members", plaintext)
    assert status == 200 and [m["id"] for m in body["members"]] == [member_a.public_id]

    page.get_by_role("link", name=re.compile("back to API keys")).click()
    expect(page.get_by_role("link", name="Store POS", exact=True)).to_be_visible()
    expect(page.get_by_test_id("key-prefix")).to_have_text(f"{plaintext[:12]}…")
    assert plaintext not in page.content(), "the key must never be shown a second time"
    page.screenshot(path=ARTIFACTS / "console-api-keys.png", full_page=True)

    page.get_by_role("link", name="Activity of Store POS").click()
    row = page.locator("table.activity tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("GET")
    expect(row).to_contain_text("/api/v2/members")
    expect(row).to_contain_text("200")
    page.screenshot(path=ARTIFACTS / "console-api-key-activity.png", full_page=True)
