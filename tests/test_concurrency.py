"""Race tests (after Saleor's tests/race_condition.py): real threads on PostgreSQL."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections

from loyalty import errors, services
from loyalty.models import Coupon, HeldAward, LedgerEntry, Member, OutboxEvent
from loyalty.selectors import ledger_mismatches

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_race_tests_run_on_postgresql():
    # SQLite serializes every writer, which would make these races pass vacuously.
    assert connection.vendor == "postgresql"


def run_concurrently(n, fn):
    """Start ``n`` calls of fn(i) at the same instant; return their results (or exceptions)."""
    barrier = threading.Barrier(n)

    def worker(i):
        try:
            barrier.wait()
            return fn(i)
        except Exception as exc:  # noqa: BLE001 - returned to the test to assert on
            return exc
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(worker, range(n)))


def test_fifty_threads_one_key_make_one_entry(member_a):
    results = run_concurrently(
        50,
        lambda i: services.points_award(
            member=member_a, key="pos:sale-1", source="store", amount="42.00"
        ),
    )
    assert all(isinstance(r, services.AwardResult) for r in results), results
    assert {r.entry.pk for r in results} == {results[0].entry.pk}
    assert sum(r.created for r in results) == 1
    assert LedgerEntry.objects.filter(member=member_a).count() == 1
    assert Member.objects.get(pk=member_a.pk).balance == 42
    assert OutboxEvent.objects.filter(event_type="points.awarded").count() == 1


def test_fifty_threads_near_the_cap_earn_exactly_the_cap(team_a, member_a):
    team_a.daily_cap = 500
    team_a.save()
    services.points_award(member=member_a, key="warm-up", source="store", points=470)
    results = run_concurrently(
        50,
        lambda i: services.points_award(member=member_a, key=f"sale-{i}", source="store", points=7),
    )
    assert all(isinstance(r, services.AwardResult) for r in results), results
    assert services.earned_today(Member.objects.get(pk=member_a.pk)) == 500
    assert Member.objects.get(pk=member_a.pk).balance == 500
    held = sum(HeldAward.objects.filter(member=member_a).values_list("points", flat=True))
    assert held == 50 * 7 - 30  # every point not granted is held, none lost
    assert ledger_mismatches() == []


def test_concurrent_redemptions_never_overspend(member_a, reward_a):
    services.points_award(member=member_a, key="e", source="store", points=350)
    results = run_concurrently(
        20, lambda i: services.reward_redeem(member=member_a, reward=reward_a)
    )
    coupons = [r for r in results if isinstance(r, Coupon)]
    refused = [r for r in results if isinstance(r, errors.InsufficientPoints)]
    assert len(coupons) == 3 and len(refused) == 17
    assert Member.objects.get(pk=member_a.pk).balance == 50


def test_a_coupon_is_redeemed_once_under_concurrency(team_a, member_a, reward_a):
    services.points_award(member=member_a, key="e", source="store", points=100)
    coupon = services.reward_redeem(member=member_a, reward=reward_a)
    results = run_concurrently(
        20, lambda i: services.coupon_redeem(team=team_a, coupon_id=coupon.public_id)
    )
    assert sum(isinstance(r, Coupon) for r in results) == 1
    assert sum(isinstance(r, errors.CouponNotRedeemable) for r in results) == 19


def test_a_refund_replayed_concurrently_claws_back_once(member_a):
    earned = services.points_award(
        member=member_a, key="shopify-order:9", source="shopify", amount="80.00"
    ).entry
    results = run_concurrently(
        20,
        lambda i: services.points_claw_back(
            entry=earned, refund_amount="20.00", key="claw-back:shopify-order:9:refund-1"
        ),
    )
    assert len({r.pk for r in results}) == 1
    assert Member.objects.get(pk=member_a.pk).balance == 60
