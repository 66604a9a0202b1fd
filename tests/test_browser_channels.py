"""Settings → Online Shop in a real browser, against the platform emulator."""

import pytest
from playwright.sync_api import expect

from channels_app.models import Channel

from .browser_fixtures import ARTIFACTS, staff_sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def fill_amazon(page, server, creds, client_secret):
    page.get_by_label("LWA client id").fill(creds["client_id"])
    page.get_by_label("Region").fill("na")
    page.get_by_label("Marketplace ids").fill(" ".join(creds["marketplace_ids"]))
    page.get_by_label("SP-API endpoint").fill(f"{server.url}/amazon")
    page.get_by_label("LWA token URL").fill(f"{server.url}/amazon/auth/o2/token")
    page.get_by_label("LWA client secret").fill(client_secret)
    page.get_by_label("Refresh token").fill(creds["refresh_token"])


def test_admin_connects_amazon_and_a_wrong_secret_saves_nothing(page, alice, sandbox_server, demo):
    creds = demo["amazon"]
    staff_sign_in(page, "alice@alpha.test", next_url="/console/settings/online-shop/")
    page.get_by_role("link", name="Amazon", exact=True).click()
    expect(page.get_by_role("heading", name="Amazon", exact=True)).to_be_visible()

    fill_amazon(page, sandbox_server, creds, "amzn1.oa2-cs.v1.this-one-is-wrong")
    page.get_by_role("button", name="Save & Verify").click()
    expect(page.get_by_role("alert").first).to_contain_text("Amazon")
    page.screenshot(path=ARTIFACTS / "online-shop-amazon-error.png", full_page=True)
    assert not Channel.objects.exists()
    # the secret typed is not sent back to the page
    assert page.get_by_label("LWA client secret").input_value() == ""

    fill_amazon(page, sandbox_server, creds, creds["client_secret"])
    page.get_by_role("button", name="Save & Verify").click()
    expect(page.get_by_text("Verified and saved")).to_be_visible()
    for marketplace_id in creds["marketplace_ids"]:
        expect(page.get_by_text(marketplace_id).first).to_be_visible()
    page.screenshot(path=ARTIFACTS / "online-shop-amazon.png", full_page=True)
    channel = Channel.objects.get()
    assert channel.status == "connected" and channel.kind == "amazon"
    assert creds["client_secret"] not in page.content()
