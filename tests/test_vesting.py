"""Optional vesting: purchase points pending for the return window, then spendable."""

from datetime import timedelta

import pytest
from django.utils import timezone

from loyalty import errors, services
from loyalty.models import HeldAward, LedgerEntry, Member
from loyalty.selectors import ledger_mismatches
from loyalty.tasks import vest_due_awards

pytestmark = pytest.mark.django_db


@pytest.fixture
def vesting_team(team_a):
    team_a.vesting_days = 30
    team_a.save()
    return team_a


def buy(member, key, amount):
    return services.points_award(member=member, key=key, source="shopify", amount=amount)


def balance(member):
    return Member.objects.get(pk=member.pk).balance


def time_passes():
    """The return window closes for every pending award."""
    HeldAward.objects.update(release_at=timezone.now() - timedelta(seconds=1))


def test_purchase_points_are_pending_then_vest(vesting_team, member_a, reward_a):
    result = buy(member_a, "shopify-order:1", "150.00")
    assert result.entry is None and result.pending.points == 150
    assert result.pending.release_at > timezone.now() + timedelta(days=29)
    assert balance(member_a) == 0
    with pytest.raises(errors.InsufficientPoints):  # pending points cannot be spent
        services.reward_redeem(member=member_a, reward=reward_a)
    assert buy(member_a, "shopify-order:1", "150.00").pending.pk == result.pending.pk
    assert vest_due_awards() == 0  # not yet
    time_passes()
    assert vest_due_awards.delay().get() == 1
    assert balance(member_a) == 150
    entry = LedgerEntry.objects.get(idempotency_key="shopify-order:1")
    assert entry.vested and entry.amount.to_eng_string() == "150.00"
    assert ledger_mismatches() == []


def test_a_refund_inside_the_window_cancels_instead_of_clawing_back(vesting_team, member_a):
    buy(member_a, "shopify-order:2", "100.00")
    first = services.purchase_refund(
        team=vesting_team,
        key="shopify-order:2",
        refund_key="claw-back:shopify-order:2:r1",
        refund_amount="40.00",
    )
    assert first.points == 0
    again = services.purchase_refund(
        team=vesting_team,
        key="shopify-order:2",
        refund_key="claw-back:shopify-order:2:r1",
        refund_amount="40.00",
    )
    assert again.pk == first.pk  # a replayed refund changes nothing
    hold = HeldAward.objects.get()
    assert hold.points == 60 and hold.status == "held"
    time_passes()
    vest_due_awards()
    assert balance(member_a) == 60
    # after vesting, the rest of the order refunded: an ordinary claw-back of what is left
    services.purchase_refund(
        team=vesting_team,
        key="shopify-order:2",
        refund_key="claw-back:shopify-order:2:r2",
        refund_amount="60.00",
    )
    assert balance(member_a) == 0
    assert ledger_mismatches() == []


def test_a_full_refund_inside_the_window_voids_the_pending_points(vesting_team, member_a):
    buy(member_a, "shopify-order:3", "80.00")
    services.purchase_refund(
        team=vesting_team,
        key="shopify-order:3",
        refund_key="claw-back:shopify-order:3",
        refund_amount="80.00",
    )
    assert HeldAward.objects.get().status == "voided"
    time_passes()
    assert vest_due_awards() == 0 and balance(member_a) == 0


def test_pending_points_count_against_the_daily_cap_on_the_purchase_day(vesting_team, member_a):
    vesting_team.daily_cap = 100
    vesting_team.save()
    first = buy(member_a, "o-1", "70.00")
    second = buy(member_a, "o-2", "70.00")
    assert first.pending.points == 70 and second.pending.points == 30
    assert second.held.points == 40 and second.held.reason == "over_cap"
    time_passes()
    assert vest_due_awards() == 2
    # vesting today does not use up today's cap
    assert services.earned_today(Member.objects.get(pk=member_a.pk)) == 100
    late = buy(member_a, "o-3", "5.00")  # the cap is still used up for today
    assert late.pending is None and late.held.points == 5


def test_staff_cannot_release_pending_points_early(vesting_team, member_a, alice):
    pending = buy(member_a, "o-9", "10.00").pending
    with pytest.raises(errors.IllegalTransition):
        services.hold_release(hold=pending, actor=alice)


def test_fixed_point_awards_do_not_vest(vesting_team, member_a):
    result = services.points_award(member=member_a, key="goodwill", source="api", points=20)
    assert result.entry.points == 20 and result.pending is None
