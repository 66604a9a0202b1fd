"""Member portal: enrollment, sign-in, balance, card, rewards, and the team boundary."""

import re
import threading

import pytest
from django.db import connection
from django.test import Client

from loyalty import services
from loyalty.models import Coupon, LedgerEntry, Member, MemberStatus, Source

from .factories import RewardFactory

pytestmark = pytest.mark.django_db


def sign_in(client, *, slug="alpha", email="ann@example.com", password="pw-member-1"):
    return client.post(f"/p/{slug}/login/", {"email": email, "password": password})


def give(member, points, key="gift"):
    return services.points_award(member=member, points=points, key=key, source=Source.STORE)


def nonce_for(html: str, reward) -> str:
    # The nonce is the hidden field right after this reward's id in its form.
    match = re.search(
        rf'name="reward" value="{reward.pk}"[^>]*>\s*<input[^>]*name="nonce" value="([^"]+)"',
        html,
    )
    assert match, "redeem form for the reward not found"
    return match.group(1)


# --- enrollment and sign-in -----------------------------------------------------------------


def test_enroll_creates_member_and_signs_in(client, team_a):
    r = client.post(
        "/p/alpha/enroll/", {"email": "Zoe@Example.com", "password": "long-enough", "name": "Zoe"}
    )
    assert r.status_code == 302 and r["Location"] == "/p/alpha/"
    member = Member.objects.get(team=team_a, email="zoe@example.com")
    assert member.name == "Zoe"
    home = client.get("/p/alpha/")
    assert home.status_code == 200
    assert "Hi Zoe" in home.content.decode()


def test_enroll_duplicate_email_shows_error(client, member_a):
    r = client.post(
        "/p/alpha/enroll/", {"email": "ann@example.com", "password": "another-pw", "name": "A2"}
    )
    assert r.status_code == 200
    assert "already enrolled" in r.content.decode()
    assert 'aria-invalid="true"' in r.content.decode()
    assert Member.objects.filter(email="ann@example.com").count() == 1
    assert "member:" not in "".join(client.session.keys())


def test_enroll_short_password_is_a_field_error(client, team_a):
    r = client.post("/p/alpha/enroll/", {"email": "x@example.com", "password": "short"})
    assert r.status_code == 200
    assert "at least 8 characters" in r.content.decode()
    assert not Member.objects.filter(email="x@example.com").exists()


def test_login_wrong_password(client, member_a):
    r = sign_in(client, password="wrong-password")
    assert r.status_code == 200
    assert "do not match" in r.content.decode()
    assert client.get("/p/alpha/")["Location"] == "/p/alpha/login/"


def test_login_unknown_email_says_the_same(client, member_a):
    r = sign_in(client, email="nobody@example.com")
    assert r.status_code == 200
    assert "do not match" in r.content.decode()


def test_login_signs_in_and_rotates_session(client, member_a):
    client.get("/p/alpha/login/")
    before = client.session.session_key
    r = sign_in(client)
    assert r.status_code == 302 and r["Location"] == "/p/alpha/"
    assert client.session.session_key != before
    assert client.session[f"member:{member_a.team_id}"] == member_a.pk


def test_blocked_member_cannot_log_in(client, member_a):
    Member.objects.filter(pk=member_a.pk).update(status=MemberStatus.BLOCKED)
    r = sign_in(client)
    assert r.status_code == 200
    assert "blocked" in r.content.decode()
    assert client.get("/p/alpha/").status_code == 302


def test_member_blocked_after_sign_in_is_signed_out(client, member_a):
    sign_in(client)
    assert client.get("/p/alpha/").status_code == 200
    Member.objects.filter(pk=member_a.pk).update(status=MemberStatus.BLOCKED)
    assert client.get("/p/alpha/")["Location"] == "/p/alpha/login/"


def test_logout_is_a_post_and_signs_out(client, member_a):
    sign_in(client)
    assert client.get("/p/alpha/logout/").status_code == 405
    r = client.post("/p/alpha/logout/")
    assert r["Location"] == "/p/alpha/login/"
    assert client.get("/p/alpha/")["Location"] == "/p/alpha/login/"


@pytest.mark.parametrize("page", ["", "history/", "card/", "rewards/", "coupons/"])
def test_member_pages_need_sign_in(client, team_a, page):
    r = client.get(f"/p/alpha/{page}")
    assert r.status_code == 302 and r["Location"] == "/p/alpha/login/"


# --- home, history, card --------------------------------------------------------------------


def test_home_shows_balance_tier_and_progress(client, member_a):
    give(member_a, 250)
    sign_in(client)
    html = client.get("/p/alpha/").content.decode()
    assert re.search(r'data-testid="balance">250<', html)
    assert "Member tier" in html
    assert "750 more points to Gold" in html
    assert '<progress max="100" value="25"' in html


def test_home_shows_held_points_as_pending_not_spendable(client, team_a, member_a):
    team_a.daily_cap = 100
    team_a.save()
    result = give(member_a, 300, key="big-sale")
    assert result.points == 100 and result.held.points == 200
    sign_in(client)
    html = client.get("/p/alpha/").content.decode()
    assert re.search(r'data-testid="balance">100<', html)
    assert re.search(r"200 points pending", html)
    assert "not spendable" in html


def test_history_is_newest_first_and_paginated(client, member_a):
    for n in range(25):
        services.points_adjust(
            member=member_a, points=n + 1, source=Source.CONSOLE, description=f"Gift number {n}"
        )
    sign_in(client)
    first = client.get("/p/alpha/history/").content.decode()
    assert first.count('class="entry"') == 20
    assert first.index("Gift number 24") < first.index("Gift number 23")
    assert "Gift number 4<" not in first
    assert "Page 1 of 2" in first
    second = client.get("/p/alpha/history/?page=2").content.decode()
    assert second.count('class="entry"') == 5
    assert "Gift number 4<" in second and "Gift number 0<" in second
    assert "Gift number 24" not in second


def test_qr_card_is_inline_svg_with_member_id(client, member_a):
    sign_in(client)
    r = client.get("/p/alpha/card/")
    html = r.content.decode()
    assert r.status_code == 200
    assert re.search(r'<svg[^>]*class="qr"', html)
    assert "<path" in html  # the modules are drawn, not an empty box
    assert member_a.public_id.startswith("mem_")
    assert f'data-testid="member-id">{member_a.public_id}<' in html


# --- rewards and coupons --------------------------------------------------------------------


def test_redeem_reward_creates_coupon_and_reduces_balance(client, member_a, reward_a):
    give(member_a, 250)
    sign_in(client)
    nonce = nonce_for(client.get("/p/alpha/rewards/").content.decode(), reward_a)
    r = client.post("/p/alpha/rewards/redeem/", {"reward": reward_a.pk, "nonce": nonce})
    assert r.status_code == 302 and r["Location"] == "/p/alpha/coupons/"
    coupon = Coupon.objects.get(member=member_a)
    member_a.refresh_from_db()
    assert member_a.balance == 150
    page = client.get("/p/alpha/coupons/").content.decode()
    assert coupon.code in page
    assert f"your coupon code is {coupon.code}" in page
    assert "issued" in page


def test_redeem_without_enough_points_shows_message(client, member_a, reward_a):
    give(member_a, 40)
    sign_in(client)
    nonce = nonce_for(client.get("/p/alpha/rewards/").content.decode(), reward_a)
    r = client.post(
        "/p/alpha/rewards/redeem/", {"reward": reward_a.pk, "nonce": nonce}, follow=True
    )
    html = r.content.decode()
    assert "costs 100 points; the balance is 40" in html
    assert 'role="alert"' in html
    assert not Coupon.objects.exists()
    member_a.refresh_from_db()
    assert member_a.balance == 40


def test_double_submit_of_one_form_makes_one_coupon(client, member_a, reward_a):
    give(member_a, 500)
    sign_in(client)
    nonce = nonce_for(client.get("/p/alpha/rewards/").content.decode(), reward_a)
    for _ in range(2):
        client.post("/p/alpha/rewards/redeem/", {"reward": reward_a.pk, "nonce": nonce})
    assert Coupon.objects.filter(member=member_a).count() == 1
    member_a.refresh_from_db()
    assert member_a.balance == 400
    # A freshly drawn form is a new purchase.
    nonce2 = nonce_for(client.get("/p/alpha/rewards/").content.decode(), reward_a)
    assert nonce2 != nonce
    client.post("/p/alpha/rewards/redeem/", {"reward": reward_a.pk, "nonce": nonce2})
    assert Coupon.objects.filter(member=member_a).count() == 2


def test_another_teams_reward_cannot_be_redeemed(client, member_a, team_b):
    foreign = RewardFactory(team=team_b, name="Beta bookmark", points_cost=10)
    give(member_a, 500)
    sign_in(client)
    r = client.post(
        "/p/alpha/rewards/redeem/", {"reward": foreign.pk, "nonce": "x" * 24}, follow=True
    )
    assert "not available" in r.content.decode()
    assert not Coupon.objects.exists()


def test_rewards_page_lists_only_active_rewards(client, team_a, member_a, reward_a, team_b):
    RewardFactory(team=team_a, name="Retired mug", active=False)
    RewardFactory(team=team_b, name="Beta bookmark")
    sign_in(client)
    html = client.get("/p/alpha/rewards/").content.decode()
    assert "Free coffee" in html
    assert "Retired mug" not in html and "Beta bookmark" not in html


# --- tenancy and framing --------------------------------------------------------------------


def test_member_of_team_a_is_not_signed_in_on_team_b(client, member_a, team_b):
    sign_in(client)
    assert client.get("/p/alpha/").status_code == 200
    r = client.get("/p/beta/")
    assert r.status_code == 302 and r["Location"] == "/p/beta/login/"
    # Team A's credentials do not open team B's portal either.
    r = sign_in(client, slug="beta")
    assert "do not match" in r.content.decode()


def test_unknown_team_slug_is_404(client, db):
    assert client.get("/p/nope/").status_code == 404
    assert client.get("/p/nope/login/").status_code == 404


def test_portal_is_frameable_only_by_configured_origins(client, member_a, settings):
    settings.PORTAL_FRAME_ANCESTORS = ["https://brand.example", "https://*.brand.example"]
    for url in ("/p/alpha/login/", "/p/alpha/enroll/"):
        r = client.get(url)
        assert r["Content-Security-Policy"] == (
            "frame-ancestors https://brand.example https://*.brand.example"
        )
        assert "X-Frame-Options" not in r.headers
    sign_in(client)
    r = client.get("/p/alpha/card/")
    assert r["Content-Security-Policy"].startswith("frame-ancestors https://brand.example")
    assert "X-Frame-Options" not in r.headers


def test_frame_ancestors_defaults_to_self_and_allows_star(client, team_a, settings):
    settings.PORTAL_FRAME_ANCESTORS = []
    assert client.get("/p/alpha/login/")["Content-Security-Policy"] == "frame-ancestors 'self'"
    settings.PORTAL_FRAME_ANCESTORS = ["*"]
    assert client.get("/p/alpha/login/")["Content-Security-Policy"] == "frame-ancestors *"


def test_console_still_refuses_framing(client, alice):
    client.force_login(alice)
    assert client.get("/console/")["X-Frame-Options"] == "DENY"


def test_redeem_writes_one_ledger_entry_with_the_form_key(client, member_a, reward_a):
    give(member_a, 100)
    sign_in(client)
    nonce = nonce_for(client.get("/p/alpha/rewards/").content.decode(), reward_a)
    client.post("/p/alpha/rewards/redeem/", {"reward": reward_a.pk, "nonce": nonce})
    entry = LedgerEntry.objects.get(member=member_a, kind="redeem")
    assert entry.idempotency_key == f"portal-redeem:{member_a.public_id}:{nonce}"
    assert entry.points == -100


@pytest.mark.django_db(transaction=True)
def test_simultaneous_double_submit_makes_one_coupon(member_a, reward_a):
    """Two copies of one form arriving together (a double tap on a slow network) both race
    past the service's early key check; the unique key must still leave one coupon."""
    give(member_a, 500)
    setup = Client()
    sign_in(setup)
    nonce = nonce_for(setup.get("/p/alpha/rewards/").content.decode(), reward_a)
    cookie = setup.cookies["sessionid"].value
    barrier = threading.Barrier(2)
    statuses = []

    def submit():
        client = Client()
        client.cookies["sessionid"] = cookie
        barrier.wait()
        try:
            r = client.post("/p/alpha/rewards/redeem/", {"reward": reward_a.pk, "nonce": nonce})
            statuses.append((r.status_code, r["Location"]))
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [(302, "/p/alpha/coupons/")] * 2
    assert Coupon.objects.filter(member=member_a).count() == 1
    member_a.refresh_from_db()
    assert member_a.balance == 400
