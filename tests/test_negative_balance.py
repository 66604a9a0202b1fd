"""Refunds of points already spent: a negative balance that locks rewards (the default), or a
claw-back that stops at zero and records the unrecovered rest for staff."""

import itertools
import re

import pytest
from django.contrib.admin.models import LogEntry
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from loyalty import errors, services
from loyalty.api.errors import exception_handler
from loyalty.models import (
    EntryKind,
    LedgerEntry,
    Member,
    NegativeBalancePolicy,
    OutboxEvent,
    Team,
    UnrecoveredPoints,
)
from loyalty.selectors import ledger_mismatches

from .factories import RewardFactory, TeamFactory, TierFactory
from .test_concurrency import run_concurrently

pytestmark = pytest.mark.django_db

LOCKED = "Your balance is \u221280 points after a refund; rewards unlock once you earn it back."


def buy(member, key, amount):
    """A paid order: at team A's rate of 1 point per dollar, ``amount`` dollars earn as many."""
    result = services.points_award(member=member, key=key, source="shopify", amount=amount)
    assert result.entry is not None
    return result.entry


def refund(team, key, refund_key, amount):
    return services.purchase_refund(
        team=team, key=key, refund_key=refund_key, refund_amount=amount, source="shopify"
    )


def balance(member):
    return Member.objects.get(pk=member.pk).balance


def stop_at_zero(team):
    team.negative_balance = NegativeBalancePolicy.STOP_AT_ZERO
    team.save(update_fields=["negative_balance"])


def reversed_and_unrecovered(entry) -> tuple[int, int]:
    took = -(entry.reversals.aggregate(s=Sum("points"))["s"] or 0)
    rest = entry.unrecovered.aggregate(s=Sum("points"))["s"] or 0
    return took, rest


def assert_ledger_ok():
    assert ledger_mismatches() == []
    call_command("check_ledger")  # the command staff run: raises on any mismatch


@pytest.fixture
def spent(team_a, member_a):
    """Ann earned 100 points on order 1 and spent 80 of them: 20 left."""
    earned = buy(member_a, "shopify-order:1", "100.00")
    services.reward_redeem(member=member_a, reward=RewardFactory(team=team_a, points_cost=80))
    assert balance(member_a) == 20
    return earned


def sign_in(client, slug="alpha"):
    r = client.post(f"/p/{slug}/login/", {"email": "ann@example.com", "password": "pw-member-1"})
    assert r.status_code == 302


# --- allow (the default) ----------------------------------------------------------------------


def test_new_teams_allow_a_negative_balance(team_a):
    assert Team.objects.get(pk=team_a.pk).negative_balance == NegativeBalancePolicy.ALLOW


def test_allow_takes_the_balance_below_zero_and_locks_rewards(team_a, member_a, spent, reward_a):
    reversal = refund(team_a, "shopify-order:1", "refund:1", "100.00")
    assert reversal.points == -100 and reversal.reverses == spent
    assert balance(member_a) == -80
    assert not UnrecoveredPoints.objects.exists()
    cheap = RewardFactory(team=team_a, name="Sticker", points_cost=1)
    for reward in (reward_a, cheap):
        with pytest.raises(errors.NegativeBalance) as refused:
            services.reward_redeem(member=member_a, reward=reward)
        assert refused.value.message == LOCKED
    # Callers that already handle "not enough points" handle this one too.
    assert isinstance(refused.value, errors.InsufficientPoints)
    assert balance(member_a) == -80
    assert_ledger_ok()


def test_earning_it_back_unlocks_rewards(team_a, member_a, spent, reward_a):
    refund(team_a, "shopify-order:1", "refund:1", "100.00")
    buy(member_a, "shopify-order:2", "80.00")
    assert balance(member_a) == 0
    with pytest.raises(errors.InsufficientPoints) as refused:  # unlocked, just not enough
        services.reward_redeem(member=member_a, reward=reward_a)
    assert not isinstance(refused.value, errors.NegativeBalance)
    buy(member_a, "shopify-order:3", "100.00")
    coupon = services.reward_redeem(member=member_a, reward=reward_a)
    assert coupon.entry.points == -100 and balance(member_a) == 0
    assert_ledger_ok()


def test_the_api_maps_a_negative_balance_to_409():
    response = exception_handler(errors.NegativeBalance(LOCKED), {})
    assert response.status_code == 409
    assert response.data == {"error": {"code": "negative_balance", "message": LOCKED}}


def test_portal_home_and_rewards_explain_a_negative_balance(client, team_a, member_a, spent):
    reward = RewardFactory(team=team_a, name="Free coffee", points_cost=50)
    refund(team_a, "shopify-order:1", "refund:1", "100.00")
    sign_in(client)
    home = client.get("/p/alpha/").content.decode()
    assert re.search(r'data-testid="balance">\u221280<', home)
    assert LOCKED in home
    assert 'href="/p/alpha/card/"' in home  # no dead end: how to earn it back
    assert "80 more points bring you back to zero" in home

    page = client.get("/p/alpha/rewards/").content.decode()
    assert LOCKED in page
    assert "Free coffee" in page
    assert 'name="nonce"' not in page  # nothing to press that cannot work
    assert "Locked until you earn back the 80 points below zero" in page

    # A redeem form drawn before the refund is refused with the same words.
    r = client.post(
        "/p/alpha/rewards/redeem/",
        {"reward": reward.pk, "nonce": "n" * 24},
        follow=True,
    )
    assert LOCKED in r.content.decode()
    assert balance(member_a) == -80


def test_portal_says_nothing_of_it_when_the_balance_is_not_negative(client, member_a, spent):
    sign_in(client)
    assert 'data-testid="negative-balance"' not in client.get("/p/alpha/").content.decode()
    assert 'data-testid="negative-balance"' not in client.get("/p/alpha/rewards/").content.decode()


# --- stop at zero -----------------------------------------------------------------------------


def test_stop_at_zero_takes_what_is_left_and_records_the_rest(team_a, member_a, spent):
    stop_at_zero(team_a)
    reversal = refund(team_a, "shopify-order:1", "refund:1", "100.00")
    assert reversal.points == -20 and reversal.kind == EntryKind.CLAW_BACK
    assert balance(member_a) == 0
    rest = UnrecoveredPoints.objects.get()
    assert rest.public_id.startswith("unr_")
    assert (rest.points, rest.member, rest.reverses, rest.entry) == (80, member_a, spent, reversal)
    assert rest.team_id == team_a.pk
    # The refunded order no longer counts towards a tier, recovered or not.
    assert Member.objects.get(pk=member_a.pk).lifetime_points == 0
    event = OutboxEvent.objects.get(event_type="points.unrecovered")
    assert event.payload["points"] == 80 and event.payload["unrecoveredId"] == rest.public_id
    assert event.payload["reverses"] == spent.public_id and event.payload["balance"] == 0
    assert_ledger_ok()


def test_stop_at_zero_replay_of_the_refund_changes_nothing(team_a, member_a, spent):
    stop_at_zero(team_a)
    first = refund(team_a, "shopify-order:1", "refund:1", "100.00")
    again = refund(team_a, "shopify-order:1", "refund:1", "100.00")
    assert again.pk == first.pk
    # The default key too: a second whole claw-back of the order is the same one.
    whole = services.points_claw_back(entry=spent)
    assert services.points_claw_back(entry=spent).pk == whole.pk and whole.points == 0
    assert UnrecoveredPoints.objects.count() == 1
    assert LedgerEntry.objects.filter(kind=EntryKind.CLAW_BACK).count() == 2
    assert balance(member_a) == 0
    assert reversed_and_unrecovered(spent) == (20, 80)
    assert_ledger_ok()


def test_stop_at_zero_with_a_zero_balance_writes_a_zero_entry_and_the_rest(
    team_a, member_a, reward_a
):
    stop_at_zero(team_a)
    earned = buy(member_a, "shopify-order:1", "100.00")
    services.reward_redeem(member=member_a, reward=reward_a)
    assert balance(member_a) == 0
    reversal = refund(team_a, "shopify-order:1", "refund:1", "100.00")
    assert reversal.points == 0 and reversal.idempotency_key == "refund:1"
    assert UnrecoveredPoints.objects.get(entry=reversal).points == 100
    assert balance(member_a) == 0
    assert reversed_and_unrecovered(earned) == (0, 100)
    assert_ledger_ok()


def test_stop_at_zero_never_deepens_a_balance_that_is_already_negative(team_a, member_a):
    earned = buy(member_a, "shopify-order:1", "100.00")
    services.points_adjust(member=member_a, points=-150, source="console", description="fix")
    assert balance(member_a) == -50
    stop_at_zero(team_a)
    reversal = refund(team_a, "shopify-order:1", "refund:1", "40.00")
    assert reversal.points == 0
    assert UnrecoveredPoints.objects.get(entry=reversal).points == 40
    assert balance(member_a) == -50
    assert reversed_and_unrecovered(earned) == (0, 40)
    assert_ledger_ok()


def test_nothing_left_to_reverse_records_no_rest(team_a, member_a, spent):
    stop_at_zero(team_a)
    refund(team_a, "shopify-order:1", "refund:1", "100.00")
    late = refund(team_a, "shopify-order:1", "refund:2", "10.00")
    assert late.points == 0
    assert UnrecoveredPoints.objects.count() == 1  # the 80 of the first refund only


def test_partial_refunds_never_ask_twice_for_what_was_not_recovered(team_a, member_a, spent):
    """30% refunded while 20 points are left, a new order, then the other 70%."""
    stop_at_zero(team_a)
    first = refund(team_a, "shopify-order:1", "refund:1", "30.00")
    assert first.points == -20 and balance(member_a) == 0
    assert reversed_and_unrecovered(spent) == (20, 10)

    buy(member_a, "shopify-order:2", "50.00")
    assert balance(member_a) == 50
    second = refund(team_a, "shopify-order:1", "refund:2", "70.00")
    # 70 points are due (the running total reaches the 100 earned): 50 taken, 20 not.
    assert second.points == -50 and balance(member_a) == 0
    assert reversed_and_unrecovered(spent) == (70, 30)

    extra = refund(team_a, "shopify-order:1", "refund:3", "5.00")  # more than was paid
    assert extra.points == 0
    took, rest = reversed_and_unrecovered(spent)
    assert took + rest == spent.points == 100
    assert list(UnrecoveredPoints.objects.order_by("id").values_list("points", flat=True)) == [
        10,
        20,
    ]
    assert_ledger_ok()


def test_partial_refunds_with_spending_in_between(team_a, member_a):
    stop_at_zero(team_a)
    earned = buy(member_a, "shopify-order:1", "100.00")
    assert refund(team_a, "shopify-order:1", "refund:1", "30.00").points == -30
    assert not UnrecoveredPoints.objects.exists()  # all of it was still there
    services.reward_redeem(member=member_a, reward=RewardFactory(team=team_a, points_cost=60))
    assert balance(member_a) == 10
    assert refund(team_a, "shopify-order:1", "refund:2", "70.00").points == -10
    assert balance(member_a) == 0
    assert reversed_and_unrecovered(earned) == (40, 60)
    assert_ledger_ok()


def test_unrecovered_points_must_be_positive(team_a, member_a, spent):
    stop_at_zero(team_a)
    reversal = refund(team_a, "shopify-order:1", "refund:1", "100.00")
    UnrecoveredPoints.objects.filter(entry=reversal).delete()
    with pytest.raises(IntegrityError), transaction.atomic():
        UnrecoveredPoints.objects.create(
            team=team_a, member=member_a, reverses=spent, entry=reversal, points=0
        )


# --- property: whatever the order of things, never over-recovered ----------------------------

_teams = itertools.count()


class StopAtZeroMachine(RuleBasedStateMachine):
    """Purchases, spending and partial refunds in any order, on a team that stops at zero."""

    @initialize()
    def make_team(self):
        self.team = TeamFactory(
            slug=f"zero-{next(_teams)}", negative_balance=NegativeBalancePolicy.STOP_AT_ZERO
        )
        TierFactory(team=self.team, threshold=0, multiplier="1")
        self.member = services.member_enroll(team=self.team, email="m@example.com")
        self.reward = RewardFactory(team=self.team, points_cost=35)
        self.keys = itertools.count()

    def _member(self):
        return Member.objects.get(pk=self.member.pk)

    @rule(dollars=st.integers(1, 300))
    def purchase(self, dollars):
        buy(self._member(), f"order-{next(self.keys)}", f"{dollars}.00")

    @rule()
    def spend(self):
        try:
            services.reward_redeem(member=self._member(), reward=self.reward)
        except errors.InsufficientPoints:
            assert self._member().balance < self.reward.points_cost

    @rule(data=st.data(), cents=st.integers(1, 40000), replay=st.booleans())
    def partial_refund(self, data, cents, replay):
        orders = list(LedgerEntry.objects.filter(team=self.team, kind=EntryKind.EARN))
        if not orders:
            return
        entry = data.draw(st.sampled_from(orders))
        key = "refund-replayed" if replay else f"refund-{next(self.keys)}"
        refund(self.team, entry.idempotency_key, key, f"{cents // 100}.{cents % 100:02d}")

    @invariant()
    def never_below_zero_and_never_over_recovered(self):
        if not hasattr(self, "team"):
            return
        assert self._member().balance >= 0
        assert ledger_mismatches(team_slug=self.team.slug) == []
        for entry in LedgerEntry.objects.filter(team=self.team, kind=EntryKind.EARN):
            took, rest = reversed_and_unrecovered(entry)
            assert 0 <= took and 0 <= rest and took + rest <= entry.points


def test_stop_at_zero_invariants_hold_for_random_sequences():
    StopAtZeroMachine.TestCase.settings = settings(
        max_examples=25,
        stateful_step_count=20,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    StopAtZeroMachine.TestCase().runTest()


# --- race: refunds of different orders at once --------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_refunds_under_stop_at_zero_never_go_below_zero(team_a, member_a):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite serializes writers, so the race is vacuous")
    stop_at_zero(team_a)
    orders = [buy(member_a, f"shopify-order:{i}", "50.00") for i in range(4)]
    services.reward_redeem(member=member_a, reward=RewardFactory(team=team_a, points_cost=150))
    assert balance(member_a) == 50
    results = run_concurrently(
        4, lambda i: refund(team_a, f"shopify-order:{i}", f"refund:{i}", "50.00")
    )
    assert all(isinstance(r, LedgerEntry) for r in results), results
    assert balance(member_a) == 0
    assert -sum(r.points for r in results) == 50  # only what was left was taken
    assert UnrecoveredPoints.objects.aggregate(s=Sum("points"))["s"] == 150
    for entry in orders:
        assert sum(reversed_and_unrecovered(entry)) == 50
    assert_ledger_ok()


# --- staff: the console page, the setting, the back office -------------------------------------


@pytest.fixture
def unrecovered(team_a, member_a, spent):
    stop_at_zero(team_a)
    refund(team_a, "shopify-order:1", "refund:1", "100.00")
    return UnrecoveredPoints.objects.get()


def test_console_lists_unrecovered_points_for_the_team(client, alice, unrecovered):
    client.force_login(alice)
    html = client.get("/console/unrecovered/").content.decode()
    assert 'data-testid="unrecovered-total">80<' in html
    assert "ann@example.com" in html and unrecovered.public_id in html
    assert "shopify-order:1" in html  # which order
    dashboard = client.get("/console/").content.decode()
    assert re.search(r'data-testid="stat-unrecovered"><a [^>]*>80<', dashboard)
    assert 'href="/console/unrecovered/"' in dashboard  # in the navigation too


def test_reviewers_see_unrecovered_points_too(client, bob, unrecovered):
    client.force_login(bob)
    r = client.get("/console/unrecovered/")
    assert r.status_code == 200 and "ann@example.com" in r.content.decode()


def test_charlie_sees_nothing_of_team_a_unrecovered(client, charlie, unrecovered):
    client.force_login(charlie)
    html = client.get("/console/unrecovered/").content.decode()
    assert "ann@example.com" not in html and unrecovered.public_id not in html
    assert 'data-testid="unrecovered-total">0<' in html
    assert "ann@example.com" not in client.get("/console/").content.decode()
    admin_list = client.get("/admin/loyalty/unrecoveredpoints/").content.decode()
    assert unrecovered.public_id not in admin_list
    r = client.get(f"/admin/loyalty/unrecoveredpoints/{unrecovered.pk}/change/")
    assert r.status_code in (302, 404)


def test_back_office_shows_unrecovered_points_read_only(client, alice, unrecovered):
    client.force_login(alice)
    assert unrecovered.public_id in client.get("/admin/loyalty/unrecoveredpoints/").content.decode()
    page = client.get(f"/admin/loyalty/unrecoveredpoints/{unrecovered.pk}/change/")
    assert page.status_code == 200
    assert 'name="points"' not in page.content.decode()  # shown, not editable
    assert client.get("/admin/loyalty/unrecoveredpoints/add/").status_code == 403


@pytest.mark.parametrize("url", ["/console/unrecovered/", "/console/settings/"])
def test_anonymous_is_sent_to_login(client, url):
    r = client.get(url)
    assert r.status_code == 302 and r["Location"] == f"/admin/login/?next={url}"


def test_team_admin_chooses_stop_at_zero_in_the_console(client, alice, team_a, team_b):
    client.force_login(alice)
    page = client.get("/console/settings/").content.decode()
    assert 'value="allow"' in page and "checked" in page
    r = client.post("/console/settings/", {"negative_balance": "stop_at_zero"})
    assert r.status_code == 302 and r["Location"] == "/console/settings/"
    assert Team.objects.get(pk=team_a.pk).negative_balance == "stop_at_zero"
    assert Team.objects.get(pk=team_b.pk).negative_balance == "allow"
    log = LogEntry.objects.get(object_id=str(team_a.pk))
    assert log.user == alice and "Stop at zero" in log.get_change_message()
    nav = client.get("/console/").content.decode()
    assert 'href="/console/unrecovered/"' in nav


def test_a_bad_choice_is_refused_and_nothing_changes(client, alice, team_a):
    client.force_login(alice)
    r = client.post("/console/settings/", {"negative_balance": "sometimes"})
    assert r.status_code == 200 and 'role="alert"' in r.content.decode()
    assert Team.objects.get(pk=team_a.pk).negative_balance == "allow"


def test_reviewer_sees_the_setting_but_cannot_change_it(client, bob, team_a):
    client.force_login(bob)
    page = client.get("/console/settings/").content.decode()
    assert (
        'data-testid="negative-balance"' in page
        and '<form method="post" action="/console/settings/"' not in page
    )
    r = client.post("/console/settings/", {"negative_balance": "stop_at_zero"})
    assert r.status_code == 403
    assert Team.objects.get(pk=team_a.pk).negative_balance == "allow"


def test_charlie_changes_only_his_own_team(client, charlie, team_a, team_b):
    client.force_login(charlie)
    client.post("/console/settings/", {"negative_balance": "stop_at_zero"})
    assert Team.objects.get(pk=team_b.pk).negative_balance == "stop_at_zero"
    assert Team.objects.get(pk=team_a.pk).negative_balance == "allow"


def test_the_service_refuses_an_unknown_policy(team_a):
    with pytest.raises(errors.InvalidInput):
        services.team_negative_balance_set(team=team_a, policy="sometimes")


def test_team_admin_edits_the_setting_in_the_back_office(client, alice, team_a):
    client.force_login(alice)
    page = client.get(f"/admin/loyalty/team/{team_a.pk}/change/").content.decode()
    assert 'name="negative_balance"' in page
