"""Property test: any sequence of ledger operations keeps balance = sum(entries) and never
spends a coupon twice."""

import itertools

import pytest
from django.db.models import Sum
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from loyalty import errors, services
from loyalty.models import Coupon, EntryKind, LedgerEntry, Member, Reward
from loyalty.selectors import ledger_mismatches

from .factories import TeamFactory, TierFactory

_teams = itertools.count()


class LedgerMachine(RuleBasedStateMachine):
    @initialize(cap=st.one_of(st.none(), st.integers(0, 400)))
    def make_team(self, cap):
        self.team = TeamFactory(slug=f"prop-{next(_teams)}", daily_cap=cap)
        TierFactory(team=self.team, threshold=0, multiplier="1")
        TierFactory(team=self.team, threshold=300, multiplier="1.25")
        self.members = [
            services.member_enroll(team=self.team, email=f"m{i}@example.com") for i in range(2)
        ]
        self.reward = Reward.objects.create(team=self.team, name="R", points_cost=60)
        self.keys = itertools.count()
        self.redeemed = set()

    def _member(self, i):
        return Member.objects.get(pk=self.members[i].pk)

    @rule(i=st.integers(0, 1), cents=st.integers(1, 30000), reuse=st.booleans())
    def award_purchase(self, i, cents, reuse):
        key = "same-sale" if reuse else f"k{next(self.keys)}"
        amount = f"{cents // 100}.{cents % 100:02d}"
        services.points_award(member=self._member(i), key=key, source="store", amount=amount)

    @rule(i=st.integers(0, 1), points=st.integers(-200, 200).filter(bool))
    def adjust(self, i, points):
        services.points_adjust(member=self._member(i), points=points, source="console")

    @rule(i=st.integers(0, 1))
    def redeem_reward(self, i):
        try:
            services.reward_redeem(member=self._member(i), reward=self.reward)
        except errors.InsufficientPoints:
            assert self._member(i).balance < self.reward.points_cost

    @rule(data=st.data())
    def redeem_coupon(self, data):
        coupons = list(Coupon.objects.filter(team=self.team).values_list("public_id", flat=True))
        if not coupons:
            return
        cid = data.draw(st.sampled_from(coupons))
        try:
            services.coupon_redeem(team=self.team, coupon_id=cid)
        except errors.CouponNotRedeemable:
            assert cid in self.redeemed
        else:
            assert cid not in self.redeemed, "a coupon was redeemed twice"
            self.redeemed.add(cid)

    @rule(data=st.data(), whole=st.booleans(), cents=st.integers(1, 30000))
    def claw_back(self, data, whole, cents):
        earned = list(
            LedgerEntry.objects.filter(team=self.team, kind=EntryKind.EARN, amount__isnull=False)
        )
        if not earned:
            return
        entry = data.draw(st.sampled_from(earned))
        refund = None if whole else f"{cents // 100}.{cents % 100:02d}"
        services.points_claw_back(entry=entry, refund_amount=refund, key=f"cb{next(self.keys)}")
        reversed_total = -(entry.reversals.aggregate(s=Sum("points"))["s"] or 0)
        assert 0 <= reversed_total <= entry.points

    @invariant()
    def balance_equals_sum_of_entries(self):
        if hasattr(self, "team"):
            assert ledger_mismatches(team_slug=self.team.slug) == []

    @invariant()
    def cap_never_exceeded(self):
        if getattr(self, "team", None) is not None and self.team.daily_cap is not None:
            for m in self.members:
                assert services.earned_today(m) <= self.team.daily_cap


@pytest.mark.django_db
def test_ledger_invariants_hold_for_random_sequences():
    LedgerMachine.TestCase.settings = settings(
        max_examples=40,
        stateful_step_count=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    LedgerMachine.TestCase().runTest()
