"""Team console: numbers, members, held awards, and who may see or do what."""

import re

import pytest
from django.contrib.auth import get_user_model

from loyalty import services
from loyalty.models import HeldAward, HoldStatus, Source

from .factories import MemberFactory, MembershipFactory, TeamFactory

pytestmark = pytest.mark.django_db


def stat(html: str, name: str) -> str:
    match = re.search(rf'data-testid="stat-{name}">(?:<a [^>]*>)?([^<]+)<', html)
    assert match, f"stat {name} not on the page"
    return match.group(1)


@pytest.fixture
def capped_hold(team_a, member_a):
    """200 points held over team A's daily cap of 100."""
    team_a.daily_cap = 100
    team_a.save()
    result = services.points_award(
        member=member_a, points=300, key="pos:sale-1", source=Source.STORE
    )
    assert result.held is not None and result.held.points == 200
    return result.held


@pytest.fixture
def no_rate_hold(member_a):
    """A purchase in a currency team A has no rate for: held with unknown points."""
    result = services.points_award(
        member=member_a, amount="12.50", currency="EUR", key="shopify-order:1", source="shopify"
    )
    assert result.held is not None and result.held.points is None
    return result.held


# --- access ---------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/console/", "/console/members/", "/console/holds/"])
def test_anonymous_is_sent_to_login(client, url):
    r = client.get(url)
    assert r.status_code == 302
    assert r["Location"] == f"/admin/login/?next={url}"


def test_user_without_team_gets_a_clear_403(client, db):
    user = get_user_model().objects.create_user("drifter@example.com", password="pw-12345678")
    client.force_login(user)
    r = client.get("/console/")
    assert r.status_code == 403
    assert "not part of any team" in r.content.decode()


def test_admin_login_page_asks_for_email(client, db):
    html = client.get("/admin/login/?next=/console/").content.decode()
    assert 'for="id_username"' in html and "E-mail:" in html
    assert "Username" not in html


# --- dashboard ------------------------------------------------------------------------------


def test_dashboard_numbers_and_chart(client, alice, team_a, member_a, reward_a):
    other = services.member_enroll(team=team_a, email="olga@example.com", password="pw-member-2")
    services.points_award(member=member_a, points=300, key="k1", source=Source.STORE)
    services.points_award(member=other, points=50, key="k2", source=Source.SHOPIFY)
    services.reward_redeem(member=member_a, reward=reward_a, key="r1")
    client.force_login(alice)
    html = client.get("/console/").content.decode()
    assert stat(html, "members") == "2"
    assert stat(html, "issued") == "350"
    assert stat(html, "redeemed") == "100"
    assert stat(html, "held") == "0"
    # The chart is drawn on the server: an SVG with one bar per channel used today.
    assert re.search(r'<svg class="chart"[^>]*role="img"', html)
    assert re.search(r"<rect [^>]*fill=\"#0072B2\"><title>[^<]*store: 300 pts</title>", html)
    assert re.search(r"<rect [^>]*fill=\"#56B4E9\"><title>[^<]*shopify: 50 pts</title>", html)
    assert "<script" not in html


def test_dashboard_counts_only_the_current_team(client, charlie, member_a, member_b):
    services.points_award(member=member_a, points=999, key="a", source=Source.STORE)
    services.points_award(member=member_b, points=7, key="b", source=Source.STORE)
    client.force_login(charlie)
    html = client.get("/console/").content.decode()
    assert "Beta Books" in html and "Alpha Coffee" not in html
    assert stat(html, "members") == "1"
    assert stat(html, "issued") == "7"


# --- members --------------------------------------------------------------------------------


def test_member_search_by_email_name_and_id(client, alice, team_a, member_a):
    olga = services.member_enroll(team=team_a, email="olga@example.com", name="Olga Petrova")
    client.force_login(alice)

    def listed(q):
        html = client.get("/console/members/", {"q": q}).content.decode()
        return {m for m in ("ann@example.com", "olga@example.com") if m in html}

    assert listed("") == {"ann@example.com", "olga@example.com"}
    assert listed("ANN@") == {"ann@example.com"}
    assert listed("petrova") == {"olga@example.com"}
    assert listed(olga.public_id) == {"olga@example.com"}
    assert listed(member_a.public_id.upper()) == {"ann@example.com"}
    assert listed("zzz") == set()


def test_member_list_is_paginated(client, alice, team_a):
    for n in range(30):
        MemberFactory(team=team_a, email=f"bulk{n:02d}@example.com")
    client.force_login(alice)
    first = client.get("/console/members/").content.decode()
    assert first.count("@example.com</a>") == 25
    assert "Page 1 of 2" in first
    second = client.get("/console/members/?page=2").content.decode()
    assert second.count("@example.com</a>") == 5


def test_member_page_shows_the_ledger(client, alice, member_a):
    services.points_award(
        member=member_a, points=120, key="k", source=Source.STORE, description="Latte x3"
    )
    client.force_login(alice)
    r = client.get(f"/console/members/{member_a.public_id}/")
    html = r.content.decode()
    assert r.status_code == 200
    assert "Latte x3" in html and "+120" in html
    assert re.search(r'data-testid="member-balance">120<', html)


# --- Charlie, in team B, sees nothing of team A -------------------------------------------


def test_charlie_cannot_open_team_a_member(client, charlie, member_a):
    client.force_login(charlie)
    assert client.get(f"/console/members/{member_a.public_id}/").status_code == 404


def test_charlie_search_never_lists_team_a(client, charlie, member_a, member_b):
    client.force_login(charlie)
    for q in ("", "ann", "example.com", member_a.public_id):
        html = client.get("/console/members/", {"q": q}).content.decode()
        # (the query itself is echoed in the search box, so look for the listing)
        assert ">ann@example.com<" not in html
        assert f"/console/members/{member_a.public_id}/" not in html
    assert "ben@example.com" in client.get("/console/members/").content.decode()


def test_charlie_cannot_release_or_void_team_a_hold(client, charlie, capped_hold):
    client.force_login(charlie)
    assert client.post(f"/console/holds/{capped_hold.public_id}/release/").status_code == 404
    assert client.post(f"/console/holds/{capped_hold.public_id}/void/").status_code == 404
    assert capped_hold.public_id not in client.get("/console/holds/").content.decode()
    capped_hold.refresh_from_db()
    assert capped_hold.status == HoldStatus.HELD


def test_team_switch_refuses_a_team_the_user_is_not_in(client, charlie, team_a, member_a):
    client.force_login(charlie)
    client.post("/console/team/", {"team": "alpha"})
    assert client.get(f"/console/members/{member_a.public_id}/").status_code == 404
    assert "Beta Books" in client.get("/console/").content.decode()


# --- held awards: Bob looks, Alice decides --------------------------------------------------


def test_bob_sees_held_awards_but_cannot_release_or_void(client, bob, capped_hold):
    client.force_login(bob)
    html = client.get("/console/holds/").content.decode()
    assert capped_hold.public_id in html
    assert "only the team's owner or an admin" in html
    assert "/release/" not in html  # no buttons that would only answer 403
    r = client.post(f"/console/holds/{capped_hold.public_id}/release/")
    assert r.status_code == 403
    assert client.post(f"/console/holds/{capped_hold.public_id}/void/").status_code == 403
    capped_hold.refresh_from_db()
    assert capped_hold.status == HoldStatus.HELD


def test_alice_releases_a_held_award(client, alice, member_a, capped_hold):
    client.force_login(alice)
    assert f"/console/holds/{capped_hold.public_id}/release/" in (
        client.get("/console/holds/").content.decode()
    )
    r = client.post(f"/console/holds/{capped_hold.public_id}/release/", follow=True)
    assert "Released 200 points to ann@example.com" in r.content.decode()
    capped_hold.refresh_from_db()
    member_a.refresh_from_db()
    assert capped_hold.status == HoldStatus.RELEASED and capped_hold.resolved_by == alice
    assert member_a.balance == 300
    # A second click finds it already released: a message, not a second grant.
    r = client.post(f"/console/holds/{capped_hold.public_id}/release/", follow=True)
    assert "already released" in r.content.decode()
    member_a.refresh_from_db()
    assert member_a.balance == 300


def test_release_without_a_rate_needs_points(client, alice, member_a, no_rate_hold):
    client.force_login(alice)
    html = client.get("/console/holds/").content.decode()
    assert 'name="points"' in html and "12.50 EUR" in html
    r = client.post(f"/console/holds/{no_rate_hold.public_id}/release/", follow=True)
    assert "enter the points to grant" in r.content.decode()
    r = client.post(
        f"/console/holds/{no_rate_hold.public_id}/release/", {"points": "-3"}, follow=True
    )
    assert "whole number above zero" in r.content.decode()
    client.post(f"/console/holds/{no_rate_hold.public_id}/release/", {"points": "14"})
    no_rate_hold.refresh_from_db()
    member_a.refresh_from_db()
    assert no_rate_hold.status == HoldStatus.RELEASED
    assert member_a.balance == 14


def test_alice_voids_a_held_award(client, alice, member_a, capped_hold):
    client.force_login(alice)
    r = client.post(
        f"/console/holds/{capped_hold.public_id}/void/", {"note": "Duplicate receipt"}, follow=True
    )
    assert f"Voided {capped_hold.public_id}" in r.content.decode()
    capped_hold.refresh_from_db()
    member_a.refresh_from_db()
    assert capped_hold.status == HoldStatus.VOIDED
    assert capped_hold.resolution_note == "Duplicate receipt"
    assert member_a.balance == 100
    voided = client.get("/console/holds/?status=voided").content.decode()
    assert "Duplicate receipt" in voided


def test_release_is_post_only(client, alice, capped_hold):
    client.force_login(alice)
    assert client.get(f"/console/holds/{capped_hold.public_id}/release/").status_code == 405


# --- several teams --------------------------------------------------------------------------


def test_user_in_two_teams_switches_between_them(client, alice, team_b, member_a, member_b):
    MembershipFactory(team=team_b, user=alice, role="reviewer")
    client.force_login(alice)
    html = client.get("/console/").content.decode()
    assert 'id="team-switch"' in html
    assert "ann@example.com" in client.get("/console/members/").content.decode()
    client.post("/console/team/", {"team": "beta"})
    members = client.get("/console/members/").content.decode()
    assert "ben@example.com" in members and "ann@example.com" not in members
    # In team B Alice is only a reviewer: her role there is what counts.
    hold = HeldAward.objects.create(
        team=team_b, member=member_b, points=5, reason="over_cap", source="store",
        idempotency_key="b-hold",
    )  # fmt: skip
    assert client.post(f"/console/holds/{hold.public_id}/release/").status_code == 403


def test_superuser_sees_every_team_through_the_switcher(client, team_a, team_b):
    root = get_user_model().objects.create_superuser("root@example.com", password="pw-root-123")
    TeamFactory(name="Gamma Games", slug="gamma")
    client.force_login(root)
    html = client.get("/console/").content.decode()
    for name in ("Alpha Coffee", "Beta Books", "Gamma Games"):
        assert f">{name}</option>" in html
    client.post("/console/team/", {"team": "gamma"})
    assert "<h1>Gamma Games</h1>" in client.get("/console/").content.decode()
