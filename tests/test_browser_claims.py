"""A claim end to end in a real browser: a member claims an Amazon order on the portal, the
emulator verifies it, Bob approves it on the claim's admin page, the member sees the points."""

import re

import pytest
from playwright.sync_api import expect

from claims import pacing, services
from claims.models import Claim
from loyalty.models import EarningPolicy, LedgerEntry

from .browser_fixtures import ARTIFACTS, staff_sign_in
from .test_browser import member_sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _fresh_buckets():
    pacing.reset()
    yield
    pacing.reset()


def test_member_claims_bob_approves_member_sees_points(
    page, browser, live_server, member_a, bob, amazon_channel, demo
):
    EarningPolicy.objects.update_or_create(
        team=member_a.team, currency="USD", defaults={"rate": "2"}
    )
    services.rollout_set(channel=amazon_channel, stage="on")
    order_id = demo["amazon"]["order_id"]

    member_sign_in(page)
    page.goto("/p/alpha/claims/")
    page.get_by_label("Order number").fill(order_id)
    page.get_by_role("button", name="Claim order").click()
    for _ in range(20):  # verification runs in-process; poll in case it lands after the page
        if page.get_by_text("waiting for review").count():
            break
        page.wait_for_timeout(250)
        page.reload()
    expect(page.get_by_text("waiting for review")).to_be_visible()
    claim = Claim.objects.get()
    assert claim.status == "pending_review" and claim.points_preview

    staff = browser.new_context(base_url=live_server.url, viewport={"width": 1600, "height": 900})
    admin = staff.new_page()
    admin.set_default_timeout(10_000)
    staff_sign_in(admin, "bob@alpha.test", next_url="/admin/claims/claim/")
    expect(admin.get_by_role("link", name=claim.public_id)).to_be_visible()
    admin.locator("#toggle-nav-sidebar").click()  # the queue's columns want the room
    admin.screenshot(path=ARTIFACTS / "admin-claims-queue.png", full_page=True)
    admin.get_by_role("link", name=claim.public_id).click()
    expect(admin.get_by_text(order_id).first).to_be_visible()
    expect(admin.get_by_text("Red flags", exact=True)).to_be_visible()
    admin.screenshot(path=ARTIFACTS / "admin-claim-review.png", full_page=True)
    admin.get_by_role("button", name="Approve").click()
    expect(admin).to_have_url(re.compile(r"/admin/claims/claim/$"))
    expect(admin.locator(".messagelist")).to_contain_text("approved")
    staff.close()

    claim.refresh_from_db()
    assert claim.status == "awarded"
    entry = LedgerEntry.objects.get(member=member_a)
    assert entry.idempotency_key == f"amazon-order:{order_id}"

    page.goto("/p/alpha/claims/")
    expect(page.get_by_text(f"approved · +{entry.points} points")).to_be_visible()
    page.goto("/p/alpha/")
    expect(page.get_by_test_id("balance")).to_have_text(f"{entry.points:,}")
    page.screenshot(path=ARTIFACTS / "portal-claim-awarded.png", full_page=True)


def test_admin_turns_auto_approval_on_with_confirmation_on_a_phone(phone, alice, tiktok_channel):
    from claims.models import ApprovalPolicy

    staff_sign_in(phone, "alice@alpha.test", next_url="/console/claims/")
    phone.get_by_role("link", name=f"Auto-approval policy of {tiktok_channel.name}").click()
    warning = phone.locator("#policy-warning")
    expect(warning).to_contain_text("without a person looking at them")
    expect(warning).to_contain_text("with it off, every claim waits for a reviewer")

    phone.get_by_label("Order delivered").check()
    phone.get_by_label("Order amount at most a limit").check()
    phone.get_by_label("Largest order amount (USD)").fill("150")
    phone.get_by_label("Approve claims that pass every rule automatically").check()
    phone.get_by_role("button", name="Save policy").click()
    expect(phone.get_by_text("Tick this box to confirm")).to_be_visible()  # not without it
    assert not ApprovalPolicy.objects.exists()

    phone.get_by_label("I understand").check()
    phone.get_by_role("button", name="Save policy").click()
    expect(phone.get_by_test_id("policy-state")).to_contain_text("auto-approval on")
    expect(phone.get_by_text("auto-approval is on (version 1)")).to_be_visible()
    expect(phone.locator("#policy-v1")).to_contain_text("alice@alpha.test")
    phone.screenshot(path=ARTIFACTS / "console-auto-approval-phone.png", full_page=True)
    policy = ApprovalPolicy.objects.get()
    assert policy.enabled and policy.require_delivered and str(policy.max_amount) == "150.00"


def test_admin_checks_refunds_now_and_the_member_sees_the_reversal(
    phone, page, settings, sandbox, alice, member_a, amazon_channel
):
    from claims.models import ClaimStatus

    from .test_clawback import awarded_claim, emulator_order

    settings.CLAWBACK_SETTLE_SECONDS = -2  # the emulator publishes at once (see test_clawback)
    EarningPolicy.objects.update_or_create(
        team=member_a.team, currency="USD", defaults={"rate": "2"}
    )
    order_id = emulator_order(sandbox, "amazon", "40.00")
    claim = awarded_claim(amazon_channel, order_id, "40.00", member=member_a)
    sandbox.refund_order("amazon", order_id)

    staff_sign_in(phone, "alice@alpha.test", next_url="/console/claims/")
    expect(phone.get_by_text("not checked yet")).to_be_visible()
    phone.get_by_role("button", name="Check refunds now").click()
    expect(phone.get_by_role("status")).to_contain_text("1 reversal made")
    expect(phone.get_by_text("1 claim reversed")).to_be_visible()
    phone.screenshot(path=ARTIFACTS / "console-claims-clawback-phone.png", full_page=True)
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.REVERSED

    member_sign_in(page)
    page.goto("/p/alpha/claims/")
    expect(page.get_by_text("reversed: order refunded")).to_be_visible()
