"""Real-browser tests: Debian chromium driven by Playwright against the live test server.

Screenshots land in test-artifacts/ (git-ignored) for a person to look at.
"""

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from loyalty import services
from loyalty.models import Coupon, Source

from .browser_fixtures import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def member_sign_in(page, *, email="ann@example.com", password="pw-member-1"):
    page.goto("/p/alpha/login/")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/p/alpha/$"))


def fits_horizontally(page) -> bool:
    """True when the page settles at the phone's own width with nothing sticking out.

    A mobile browser zooms out to show wide content, which widens innerWidth too, so the
    viewport must still be the phone's width. Polled: on a busy machine the zoom is sometimes
    measured while the page is still loading; a real overflow never settles and fails."""
    width = page.viewport_size["width"]
    try:
        page.wait_for_function(
            f"window.innerWidth === {width} && document.documentElement.scrollWidth <= {width}",
            timeout=5_000,
        )
    except PlaywrightTimeout:
        return False
    return True


def test_enrollment_home_and_qr_card(page, team_a):
    page.goto("/p/alpha/")
    expect(page).to_have_url(re.compile(r"/p/alpha/login/$"))
    page.get_by_role("link", name="Join Alpha Coffee rewards").click()

    # The form is filled through its labels, which proves they are tied to the inputs.
    page.get_by_label("Your name").fill("Zoe")
    page.get_by_label("E-mail").fill("zoe@example.com")
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Join").click()
    expect(page.get_by_role("alert")).to_contain_text("correct the highlighted field")
    expect(page.get_by_label("Password")).to_have_attribute("aria-invalid", "true")
    page.screenshot(path=ARTIFACTS / "portal-enroll-error.png", full_page=True)

    page.get_by_label("Password").fill("zoe-secret-1")
    page.get_by_role("button", name="Join").click()
    expect(page).to_have_url(re.compile(r"/p/alpha/$"))
    expect(page.get_by_role("heading", name="Hi Zoe")).to_be_visible()
    expect(page.get_by_test_id("balance")).to_have_text("0")
    expect(page.get_by_role("status")).to_contain_text("Welcome to Alpha Coffee")

    page.get_by_role("link", name="Card", exact=True).click()
    qr = page.locator("svg.qr")
    expect(qr).to_be_visible()
    box = qr.bounding_box()
    assert box and box["width"] >= 150, "the QR code should be big enough to scan"
    member_id = page.get_by_test_id("member-id").inner_text()
    assert re.fullmatch(r"mem_[a-z0-9]{20}", member_id)
    page.screenshot(path=ARTIFACTS / "portal-card.png", full_page=True)


def test_redeem_a_reward_and_see_the_coupon(page, member_a, reward_a):
    services.points_award(member=member_a, points=250, key="pos:1", source=Source.STORE)
    member_sign_in(page)
    expect(page.get_by_test_id("balance")).to_have_text("250")

    page.get_by_role("link", name="Rewards").click()
    page.get_by_role("button", name="Redeem Free coffee").click()
    expect(page).to_have_url(re.compile(r"/p/alpha/coupons/$"))
    coupon = Coupon.objects.get(member=member_a)
    expect(page.get_by_test_id("coupon-code")).to_have_text(coupon.code)
    expect(page.get_by_role("status")).to_contain_text(coupon.code)
    page.screenshot(path=ARTIFACTS / "portal-coupons.png", full_page=True)

    page.get_by_role("link", name="Home").click()
    expect(page.get_by_test_id("balance")).to_have_text("150")

    # Not enough points left for a second one: the error is announced, nothing is bought.
    services.points_adjust(member=member_a, points=-100, source=Source.CONSOLE)
    page.get_by_role("link", name="Rewards").click()
    page.get_by_role("button", name="Redeem Free coffee").click()
    expect(page.get_by_role("alert")).to_contain_text("costs 100 points; the balance is 50")
    assert Coupon.objects.filter(member=member_a).count() == 1


def test_staff_login_dashboard_members_and_holds(page, alice, member_a, team_a):
    team_a.daily_cap = 300
    team_a.save()
    services.points_award(member=member_a, points=380, key="pos:2", source=Source.STORE)
    services.member_enroll(team=team_a, email="olga@example.com", name="Olga")

    page.goto("/console/")
    expect(page).to_have_url(re.compile(r"/admin/login/\?next=/console/$"))
    page.get_by_label("E-mail").fill("alice@alpha.test")
    page.get_by_label("Password").fill("pw-staff-123")
    page.get_by_role("button", name="Log in").click()

    expect(page).to_have_url(re.compile(r"/console/$"))
    expect(page.get_by_role("heading", name="Alpha Coffee")).to_be_visible()
    expect(page.get_by_test_id("stat-members")).to_have_text("2")
    expect(page.get_by_test_id("stat-issued")).to_have_text("300")
    expect(page.get_by_test_id("stat-held")).to_have_text("1")
    expect(page.locator("svg.chart rect")).to_have_count(1)
    page.screenshot(path=ARTIFACTS / "console-dashboard.png", full_page=True)

    page.get_by_role("link", name="Members", exact=True).click()
    expect(page.get_by_role("link", name="ann@example.com")).to_be_visible()
    expect(page.get_by_role("link", name="olga@example.com")).to_be_visible()
    page.get_by_label("Search members").fill("olga")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("link", name="olga@example.com")).to_be_visible()
    expect(page.get_by_role("link", name="ann@example.com")).to_have_count(0)
    page.screenshot(path=ARTIFACTS / "console-members.png", full_page=True)

    page.get_by_role("link", name="Held awards").click()
    expect(page.get_by_text("Over the daily earning cap")).to_be_visible()
    page.screenshot(path=ARTIFACTS / "console-holds.png", full_page=True)
    page.get_by_role("button", name="Release").click()
    expect(page.get_by_role("status")).to_contain_text("Released 80 points to ann@example.com")
    member_a.refresh_from_db()
    assert member_a.balance == 380


def test_portal_fits_a_phone(phone, team_a, member_a, reward_a):
    team_a.daily_cap = 200
    team_a.save()
    services.points_award(
        member=member_a, points=340, key="pos:3", source=Source.STORE, description="Beans"
    )
    member_sign_in(phone)
    expect(phone.get_by_test_id("pending")).to_contain_text("140 points pending")
    phone.screenshot(path=ARTIFACTS / "portal-home-phone.png", full_page=True)
    assert fits_horizontally(phone), "portal home overflows a 390px-wide screen"
    for name in ("Card", "Rewards", "Coupons", "History"):
        phone.get_by_role("link", name=name, exact=True).click()
        expect(phone.get_by_role("link", name=name, exact=True)).to_have_attribute(
            "aria-current", "page"
        )
        assert fits_horizontally(phone), f"portal {name} page overflows a phone screen"
    phone.goto("/p/alpha/card/")
    expect(phone.locator("svg.qr")).to_be_visible()
    phone.screenshot(path=ARTIFACTS / "portal-card-phone.png")


def test_console_fits_a_phone(phone, alice, member_a):
    phone.goto("/admin/login/?next=/console/members/")
    phone.get_by_label("E-mail").fill("alice@alpha.test")
    phone.get_by_label("Password").fill("pw-staff-123")
    phone.get_by_role("button", name="Log in").click()
    expect(phone.get_by_role("link", name="ann@example.com")).to_be_visible()
    assert fits_horizontally(phone), "console members page overflows a phone screen"
    phone.get_by_role("link", name="Dashboard").click()
    # Measure the dashboard, not the members page it is still leaving.
    expect(phone.get_by_role("heading", name="Points issued by channel")).to_be_visible()
    assert fits_horizontally(phone), "console dashboard overflows a phone screen"


@pytest.fixture
def brand_site(live_server):
    """A brand's own website embedding the portal, on another origin. It is a real local
    server: Chrome refuses to let a page it considers public frame a local one, so a routed
    fake domain would be blocked for a reason that has nothing to do with our headers."""
    html = f'<h1>Brand</h1><iframe src="{live_server.url}/p/alpha/login/" width="380" height="600">'

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(html.encode())

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # 127.0.0.1 vs the live server's "localhost": a different origin, as a brand's site is.
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_portal_renders_inside_an_allowed_brand_iframe(page, team_a, settings, brand_site):
    settings.PORTAL_FRAME_ANCESTORS = [brand_site]
    page.goto(brand_site)
    frame = page.frame_locator("iframe")
    expect(frame.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(frame.get_by_label("E-mail")).to_be_visible()


def test_portal_refuses_an_unlisted_site_iframe(page, team_a, settings, brand_site):
    settings.PORTAL_FRAME_ANCESTORS = ["https://other-brand.example"]
    page.goto(brand_site)
    # The load event waited for the iframe, so a refused frame has settled by now.
    portal = next(f for f in page.frames if f != page.main_frame)
    assert "Sign in" not in portal.content()
    expect(page.get_by_role("heading", name="Brand")).to_be_visible()


def test_negative_balance_on_a_phone(phone, team_a, member_a, reward_a):
    services.points_award(member=member_a, key="o1", source=Source.STORE, amount="100.00")
    services.reward_redeem(member=member_a, reward=reward_a)
    services.purchase_refund(team=team_a, key="o1", refund_key="r1", refund_amount="60.00")
    member_sign_in(phone)
    expect(phone.get_by_test_id("balance")).to_have_text("\u221260")
    notice = phone.get_by_role("status").filter(has_text="Rewards are locked")
    expect(notice).to_contain_text("rewards unlock once you earn it back")
    phone.screenshot(path=ARTIFACTS / "portal-home-negative-phone.png", full_page=True)
    assert fits_horizontally(phone), "negative-balance notice overflows a phone screen"
    notice.get_by_role("link", name="member card").click()
    expect(phone.locator("svg.qr")).to_be_visible()  # the way out: earn at the register
    phone.goto("/p/alpha/rewards/")
    expect(phone.get_by_role("button", name=re.compile("Redeem"))).to_have_count(0)
    phone.screenshot(path=ARTIFACTS / "portal-rewards-negative-phone.png", full_page=True)
    assert fits_horizontally(phone), "locked rewards page overflows a phone screen"
