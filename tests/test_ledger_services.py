"""The one door to a balance: formula, idempotency, cap, holds, redemption, claw-back."""

from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError

from loyalty import errors, services
from loyalty.models import (
    Coupon,
    EarningPolicy,
    HeldAward,
    HoldReason,
    LedgerEntry,
    Member,
    OutboxEvent,
)
from loyalty.selectors import ledger_mismatches

pytestmark = pytest.mark.django_db


def award(member, key, **kw):
    kw.setdefault("source", "store")
    return services.points_award(member=member, key=key, **kw)


def balance(member):
    return Member.objects.get(pk=member.pk).balance


def test_formula_floors_amount_times_rate_times_multiplier(team_a, member_a):
    EarningPolicy.objects.filter(team=team_a).update(rate=Decimal("2.5"))
    result = award(member_a, "r1", amount="10.99")
    assert result.entry.points == 27  # floor(10.99 × 2.5 × 1) = floor(27.475)
    assert result.entry.rate == Decimal("2.5") and result.entry.multiplier == Decimal("1")
    assert result.entry.amount == Decimal("10.99") and result.entry.currency == "USD"
    assert balance(member_a) == 27


def test_tier_multiplier_applies_and_tier_is_recomputed(team_a, member_a):
    award(member_a, "big", points=1000)
    member = Member.objects.get(pk=member_a.pk)
    assert member.tier.name == "Gold"
    result = award(member, "after-gold", amount="10.00")
    assert result.entry.points == 15 and result.entry.multiplier == Decimal("1.50")


def test_same_key_returns_the_original_entry(member_a):
    first = award(member_a, "pos:1", points=50)
    again = award(member_a, "pos:1", points=50)
    assert again.entry.pk == first.entry.pk and again.created is False
    assert balance(member_a) == 50
    assert LedgerEntry.objects.filter(member=member_a).count() == 1


def test_keys_are_unique_per_team_not_globally(member_a, member_b):
    award(member_a, "shared-key", points=5)
    assert award(member_b, "shared-key", points=7).entry.points == 7


@pytest.mark.parametrize("amount", ["0", "-5", "abc", "1.234", "NaN", "Infinity"])
def test_bad_amounts_are_refused_and_nothing_is_written(member_a, amount):
    with pytest.raises(errors.InvalidInput):
        award(member_a, "bad", amount=amount)
    assert not LedgerEntry.objects.exists() and not HeldAward.objects.exists()


def test_float_amounts_are_refused(member_a):
    with pytest.raises(errors.InvalidInput):
        award(member_a, "f", amount=10.5)


def test_unknown_currency_is_held_with_a_reason_not_guessed(member_a):
    result = award(member_a, "eur-1", amount="20.00", currency="eur")
    assert result.entry is None
    assert result.held.reason == HoldReason.NO_RATE and result.held.points is None
    assert result.held.currency == "EUR"
    assert balance(member_a) == 0


def test_blocked_member_cannot_earn(member_a):
    Member.objects.filter(pk=member_a.pk).update(status="blocked")
    with pytest.raises(errors.MemberBlocked):
        award(member_a, "x", points=10)
    assert not LedgerEntry.objects.exists()


def test_daily_cap_grants_up_to_the_cap_and_holds_the_rest(team_a, member_a):
    team_a.daily_cap = 100
    team_a.save()
    award(member_a, "a", points=80)
    result = award(member_a, "b", points=50)
    assert result.entry.points == 20
    assert result.held.points == 30 and result.held.reason == HoldReason.OVER_CAP
    full = award(member_a, "c", points=10)
    assert full.entry is None and full.held.points == 10
    assert balance(member_a) == 100
    # a repeat of a fully held award neither grants nor holds twice
    assert award(member_a, "c", points=10).held.pk == full.held.pk
    assert HeldAward.objects.count() == 2


def test_cap_unavailable_fails_closed_and_is_retried(team_a, member_a, monkeypatch):
    team_a.daily_cap = 100
    team_a.save()

    def broken(member):
        raise DatabaseError("cap store unreachable")

    monkeypatch.setattr(services, "earned_today", broken)
    result = award(member_a, "k", points=40)
    assert result.entry is None and result.held.reason == HoldReason.CAP_UNAVAILABLE
    assert balance(member_a) == 0

    from loyalty.tasks import retry_cap_holds

    assert retry_cap_holds() == 0  # still broken: stays held, nothing granted
    assert HeldAward.objects.get().status == "held"
    monkeypatch.undo()
    assert retry_cap_holds.delay().get() == 1
    assert balance(member_a) == 40
    assert HeldAward.objects.get().status == "released"


def test_release_and_void_of_holds(team_a, member_a, alice):
    team_a.daily_cap = 0
    team_a.save()
    held = award(member_a, "h1", points=25).held
    entry = services.hold_release(hold=held, actor=alice)
    assert entry.points == 25 and balance(member_a) == 25
    with pytest.raises(errors.IllegalTransition):
        services.hold_release(hold=held, actor=alice)
    other = award(member_a, "h2", points=5).held
    services.hold_void(hold=other, actor=alice, note="duplicate sale")
    assert balance(member_a) == 25
    no_rate = award(member_a, "h3", amount="9.00", currency="JPY").held
    with pytest.raises(errors.InvalidInput):
        services.hold_release(hold=no_rate, actor=alice)
    assert services.hold_release(hold=no_rate, actor=alice, points=9).points == 9


def test_redeem_reward_makes_one_coupon_and_spends_points(member_a, reward_a, team_a):
    with pytest.raises(errors.InsufficientPoints):
        services.reward_redeem(member=member_a, reward=reward_a)
    assert not Coupon.objects.exists()
    award(member_a, "e", points=150)
    coupon = services.reward_redeem(member=member_a, reward=reward_a)
    assert coupon.public_id.startswith("cpn_") and balance(member_a) == 50
    services.coupon_redeem(team=team_a, coupon_id=coupon.public_id)
    with pytest.raises(errors.CouponNotRedeemable):
        services.coupon_redeem(team=team_a, coupon_id=coupon.public_id)


def test_coupon_of_another_team_is_not_found(member_a, reward_a, team_b):
    award(member_a, "e", points=150)
    coupon = services.reward_redeem(member=member_a, reward=reward_a)
    with pytest.raises(errors.CouponNotRedeemable):
        services.coupon_redeem(team=team_b, coupon_id=coupon.public_id)
    assert Coupon.objects.get().status == "issued"


def test_reward_of_another_team_is_refused(member_b, reward_a):
    with pytest.raises(errors.NotFound):
        services.reward_redeem(member=member_b, reward=reward_a)


def test_claw_back_reverses_what_was_earned_proportionally(team_a, member_a):
    earned = award(member_a, "shopify-order:1", amount="100.00").entry  # 100 points at rate 1
    # today's rate changes; the claw-back must not use it
    EarningPolicy.objects.filter(team=team_a).update(rate=Decimal("5"))
    first = services.points_claw_back(entry=earned, refund_amount="33.33", key="claw-back:r1")
    assert first.points == -33
    assert (
        services.points_claw_back(entry=earned, refund_amount="33.33", key="claw-back:r1").pk
        == first.pk
    )  # replay: once
    second = services.points_claw_back(entry=earned, refund_amount="66.67", key="claw-back:r2")
    assert second.points == -67  # the running total reaches exactly what was earned
    assert balance(member_a) == 0
    third = services.points_claw_back(entry=earned, refund_amount="10.00", key="claw-back:r3")
    assert third.points == 0  # nothing left to reverse


def test_claw_back_may_go_negative_and_then_blocks_redemption(member_a, reward_a):
    earned = award(member_a, "o", points=150).entry
    services.reward_redeem(member=member_a, reward=reward_a)
    services.points_claw_back(entry=earned)
    assert balance(member_a) == -100
    with pytest.raises(errors.InsufficientPoints):
        services.reward_redeem(member=member_a, reward=reward_a)


def test_claw_back_of_a_fully_reversed_order_voids_its_held_rest(team_a, member_a):
    team_a.daily_cap = 10
    team_a.save()
    result = award(member_a, "o", amount="30.00")
    assert result.entry.points == 10 and result.held.points == 20
    services.points_claw_back(entry=result.entry, refund_amount="30.00")
    assert HeldAward.objects.get().status == "voided"


def test_every_change_writes_an_outbox_event_in_the_same_transaction(member_a, reward_a):
    award(member_a, "e1", points=200)
    services.points_adjust(member=member_a, points=-10, source="console", description="fix")
    services.reward_redeem(member=member_a, reward=reward_a)
    kinds = list(OutboxEvent.objects.order_by("id").values_list("event_type", flat=True))
    assert kinds == ["member.enrolled", "points.awarded", "points.adjusted", "reward.redeemed"]
    payload = OutboxEvent.objects.get(event_type="points.awarded").payload
    assert payload["points"] == 200 and payload["memberId"] == member_a.public_id


def test_entries_are_immutable(member_a):
    entry = award(member_a, "e", points=10).entry
    entry.points = 1000
    with pytest.raises(ValueError):
        entry.save()


def test_check_ledger_names_members_that_differ(member_a, capsys):
    award(member_a, "e", points=10)
    call_command("check_ledger")
    Member.objects.filter(pk=member_a.pk).update(balance=999)
    assert ledger_mismatches()[0]["public_id"] == member_a.public_id
    with pytest.raises(CommandError) as exc:
        call_command("check_ledger")
    assert "1 member(s) differ" in str(exc.value)
    assert member_a.public_id in capsys.readouterr().err


def test_enrollment_rules(team_a):
    services.member_enroll(team=team_a, email=" Zed@Example.com ", password="longenough")
    with pytest.raises(errors.AlreadyEnrolled):
        services.member_enroll(team=team_a, email="zed@example.COM", password="longenough")
    with pytest.raises(errors.InvalidInput):
        services.member_enroll(team=team_a, email="not-an-email", password="longenough")
    with pytest.raises(errors.InvalidInput):
        services.member_enroll(team=team_a, email="short@example.com", password="short")


def test_awards_too_large_for_the_ledger_are_refused_not_overflowed(team_a, member_a):
    EarningPolicy.objects.filter(team=team_a).update(rate=Decimal("100"))
    with pytest.raises(errors.InvalidInput, match="more than one award may grant"):
        award(member_a, "huge", amount="99999999.99")
    with pytest.raises(errors.InvalidInput, match="too large"):
        award(member_a, "huger", amount="6704965904.90")
    with pytest.raises(errors.InvalidInput, match="at most"):
        award(member_a, "fixed", points=10**9)
    assert not LedgerEntry.objects.exists()
