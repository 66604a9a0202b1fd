"""The auto-approval policy: each rule alone and combined, off means 100% human review (a
property), the monthly limit under concurrency, versioned and audited changes, tenancy, the
console page and the review queue's view of the policy's verdicts."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels_app.models import Channel
from claims import policy
from claims.errors import NotAllowed
from claims.models import ApprovalPolicy, Claim, ClaimStatus, VerifiedOrder
from loyalty import errors
from loyalty.models import LedgerEntry, Member, Team

from .claims_fixtures import submit as submit_claim
from .factories import MembershipFactory
from .sandbox_fixtures import make_channel
from .test_concurrency import run_concurrently

S = ClaimStatus
LIST = "/admin/claims/claim/"

pytestmark = pytest.mark.usefixtures("fresh_buckets")


@pytest.fixture
def tiktok_postal(sandbox, demo):
    return sandbox.tiktok.orders[demo["tiktok"]["order_id"]].recipient["postal_code"]


def submit(member, channel, number, postal=""):
    """Submit as the portal does; verification (and the policy) run when it commits."""
    return Claim.objects.get(pk=submit_claim(member, channel, number, postal).pk)


def signed_in(user):
    client = Client()
    client.force_login(user)
    return client


def age(member, days):
    Member.objects.filter(pk=member.pk).update(enrolled_at=timezone.now() - timedelta(days=days))
    member.refresh_from_db()


_orders = iter(range(10**6))


def claim_of(
    member,
    channel,
    *,
    status=S.PENDING_REVIEW,
    total="50.00",
    currency="USD",
    delivered=True,
    postal_match="match",
    order_status="DELIVERED",
    **fields,
):
    """A claim straight in the database (no emulator) with its verified order."""
    n = next(_orders)
    order = VerifiedOrder.objects.create(
        team=member.team,
        channel=channel,
        order_id=f"5760000000{n:08d}",
        total=Decimal(total),
        currency=currency,
        status=order_status,
        purchased_at=timezone.now() - timedelta(days=3),
        delivered=delivered,
        buyer_match=postal_match,
    )
    return Claim.objects.create(
        team=member.team,
        member=member,
        channel=channel,
        order_number=order.order_id,
        status=status,
        verified_order=order,
        points_preview=100,
        postal_match=postal_match,
        **fields,
    )


def rules(**on):
    """An unsaved, enabled version with only the given rules."""
    return ApprovalPolicy(enabled=True, version=1, **on)


@pytest.fixture
def tt(team_a):
    """A TikTok channel with no emulator behind it (rules are judged from stored data)."""
    return make_channel(team_a, "tiktok", config={}, secrets={})


@pytest.fixture
def az(team_a):
    return make_channel(team_a, "amazon", config={}, secrets={}, name="Amazon US")


def only(results):
    (result,) = results
    return result


# --- each rule alone -------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("match", "passed", "detail"),
    [
        ("match", True, "buyer postal code matched"),
        ("no_match", False, "buyer postal code does not match"),
        ("not_given", False, "the member gave no postal code"),
        ("unavailable", False, "the marketplace did not return the buyer's postal code"),
    ],
)
def test_rule_postal_match(member_a, tt, match, passed, detail):
    r = only(
        policy.evaluate(
            claim_of(member_a, tt, postal_match=match), rules(require_postal_match=True)
        )
    )
    assert (r.rule, r.passed, r.detail) == ("postal_match", passed, detail)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("total", "currency", "passed", "detail"),
    [
        ("100.00", "USD", True, "amount 100.00 USD is within 100.00 USD"),
        ("250", "USD", False, "amount 250.00 USD is above 100.00 USD"),
        ("20.00", "EUR", False, "order is in EUR, the limit is in USD"),
    ],
)
def test_rule_max_amount(member_a, tt, total, currency, passed, detail):
    claim = claim_of(member_a, tt, total=total, currency=currency)
    r = only(policy.evaluate(claim, rules(max_amount=Decimal("100"))))
    assert (r.rule, r.passed) == ("max_amount", passed)
    assert r.detail.startswith(detail)


@pytest.mark.django_db
def test_rule_delivered(member_a, tt, az):
    yes = only(policy.evaluate(claim_of(member_a, tt), rules(require_delivered=True)))
    assert yes.passed and yes.detail == "delivered (TikTok Shop status DELIVERED)"
    no = only(
        policy.evaluate(
            claim_of(member_a, tt, delivered=False, order_status="IN_TRANSIT"),
            rules(require_delivered=True),
        )
    )
    assert not no.passed and no.detail == "not delivered yet (TikTok Shop status IN_TRANSIT)"
    # Amazon does not report delivery: the rule fails there, even for an order marked delivered
    amazon = only(policy.evaluate(claim_of(member_a, az), rules(require_delivered=True)))
    assert not amazon.passed and "Amazon's Orders API does not report delivery" in amazon.detail


@pytest.mark.django_db
@pytest.mark.parametrize(("days", "passed"), [(45, True), (30, True), (3, False), (0, False)])
def test_rule_member_days(member_a, tt, days, passed):
    age(member_a, days)
    r = only(policy.evaluate(claim_of(member_a, tt), rules(min_member_days=30)))
    assert (r.rule, r.passed) == ("member_days", passed)
    assert r.detail.startswith(f"member for {days} day")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("history", "passed", "detail"),
    [
        ([S.AWARDED, S.AWARDED], True, "member has 2 approved claims, none rejected"),
        ([S.AWARDED, S.REVERSED, S.NOT_FOUND], False, "member has 1 approved claim, fewer than 2"),
        ([S.AWARDED, S.AWARDED, S.REJECTED], False, "member has 1 rejected claim"),
        ([], False, "member has 0 approved claims, fewer than 2"),
    ],
)
def test_rule_approved_claims(member_a, tt, history, passed, detail):
    for status in history:
        claim_of(member_a, tt, status=status)
    r = only(policy.evaluate(claim_of(member_a, tt), rules(min_approved_claims=2)))
    assert (r.rule, r.passed) == ("approved_claims", passed)
    assert r.detail.startswith(detail)


@pytest.mark.django_db
def test_rule_per_month_counts_this_calendar_month_only(member_a, tt):
    now = timezone.now()
    start = policy.month_start(now)
    claim_of(member_a, tt, status=S.AWARDED, approved_by_policy=True, reviewed_at=now)
    # last month's auto-approval and this month's reviewer approval do not count
    claim_of(
        member_a,
        tt,
        status=S.AWARDED,
        approved_by_policy=True,
        reviewed_at=start - timedelta(seconds=1),
    )
    claim_of(member_a, tt, status=S.AWARDED, reviewed_at=now)
    claim = claim_of(member_a, tt)
    r = only(policy.evaluate(claim, rules(max_per_member_month=2)))
    assert r.passed and r.detail == "member had 1 auto-approval this month (at most 2)"
    # one reversed since still counts: it was an auto-approval
    claim_of(member_a, tt, status=S.REVERSED, approved_by_policy=True, reviewed_at=now)
    r = only(policy.evaluate(claim, rules(max_per_member_month=2)))
    assert not r.passed and r.detail == "member already had 2 auto-approvals this month (at most 2)"


# --- combined, end to end through verification -----------------------------------------------


def all_rules(alice, channel, **override):
    values = dict(
        enabled=True,
        require_postal_match=True,
        max_amount="1000",
        require_delivered=True,
        min_member_days=7,
        min_approved_claims=1,
        max_per_member_month=3,
    )
    values.update(override)
    return policy.policy_change(channel=channel, actor=alice, **values)


def test_every_rule_passes_so_the_policy_awards(
    alice, bob, member_a, tiktok_on, demo, tiktok_postal
):
    age(member_a, 30)
    claim_of(member_a, tiktok_on, status=S.AWARDED)  # one earlier approved claim
    all_rules(alice, tiktok_on)
    claim = submit(member_a, tiktok_on, demo["tiktok"]["order_id"], postal=tiktok_postal)

    assert claim.status == S.AWARDED
    assert claim.approved_by_policy and claim.policy_version == 1
    assert claim.reviewed_by is None and claim.reviewed_at is not None
    assert [r["rule"] for r in claim.policy_results] == [
        "postal_match",
        "max_amount",
        "delivered",
        "member_days",
        "approved_claims",
        "per_month",
    ]
    assert all(r["passed"] for r in claim.policy_results)
    entry = LedgerEntry.objects.get(member=member_a)
    assert entry.idempotency_key == f"tiktok-order:{demo['tiktok']['order_id']}"
    assert entry.points == claim.points_awarded == claim.points_preview > 0
    assert Member.objects.get(pk=member_a.pk).balance == entry.points
    approved = claim.transitions.get(to_status=S.APPROVED)
    assert (approved.actor, approved.reason) == (None, "approved by policy v1")
    assert claim.transitions.filter(to_status=S.AWARDED, actor=None).exists()

    # the reviewer sees that no person approved it
    client = signed_in(bob)
    page = client.get(f"{LIST}{claim.pk}/change/").content.decode()
    assert "Approved by policy v1" in page and "auto-approval policy" in page
    assert "approved by policy v1" in client.get(LIST).content.decode()
    assert claim.public_id in client.get(LIST, {"policy": "approved"}).content.decode()


def test_one_rule_fails_so_the_claim_waits_and_says_which(alice, bob, member_a, tiktok_on, demo):
    age(member_a, 30)
    claim_of(member_a, tiktok_on, status=S.AWARDED)
    all_rules(alice, tiktok_on)
    claim = submit(member_a, tiktok_on, demo["tiktok"]["order_id"], postal="00000")

    assert claim.status == S.PENDING_REVIEW and not claim.approved_by_policy
    assert claim.policy_version == 1
    verdict = {r["rule"]: r["passed"] for r in claim.policy_results}
    assert verdict == {
        "postal_match": False,
        "max_amount": True,
        "delivered": True,
        "member_days": True,
        "approved_claims": True,
        "per_month": True,
    }
    assert not LedgerEntry.objects.filter(member=member_a).exists()
    assert policy.summary(claim) == "Policy v1: buyer postal code does not match"

    client = signed_in(bob)
    listing = client.get(LIST).content.decode()
    assert "Policy v1: buyer postal code does not match" in listing
    assert claim.public_id in client.get(LIST, {"policy": "held"}).content.decode()
    page = client.get(f"{LIST}{claim.pk}/change/").content.decode()
    assert "Auto-approval policy v1 held this claim for review" in page
    assert "Buyer postal code matched: buyer postal code does not match" in page

    # a person decides as always; the policy's verdict stays on record
    client.post(f"{LIST}{claim.pk}/approve/", {"reason": "checked the receipt"})
    claim.refresh_from_db()
    assert claim.status == S.AWARDED and claim.reviewed_by == bob
    assert not claim.approved_by_policy and claim.policy_version == 1


def test_amount_above_the_limit_is_shown_to_the_reviewer(alice, member_a, tiktok_on, demo):
    policy.policy_change(channel=tiktok_on, actor=alice, enabled=True, max_amount="1.00")
    claim = submit(member_a, tiktok_on, demo["tiktok"]["order_id"])
    order = claim.verified_order
    assert claim.status == S.PENDING_REVIEW
    assert policy.summary(claim) == (
        f"Policy v1: amount {order.total:.2f} {order.currency} is above 1.00 USD"
    )


def test_amazon_delivered_rule_always_leaves_claims_to_a_person(alice, member_a, amazon_on, demo):
    policy.policy_change(channel=amazon_on, actor=alice, enabled=True, require_delivered=True)
    claim = submit(member_a, amazon_on, demo["amazon"]["order_id"])
    assert claim.status == S.PENDING_REVIEW and claim.policy_version == 1
    assert "does not report delivery" in policy.summary(claim)
    assert not LedgerEntry.objects.exists()


def test_a_blocked_member_is_left_to_a_person(alice, member_a, tiktok_on, demo):
    policy.policy_change(channel=tiktok_on, actor=alice, enabled=True, max_amount="1000")
    Member.objects.filter(pk=member_a.pk).update(status="blocked")
    claim = policy.apply_policy(claim_of(member_a, tiktok_on))
    assert claim.status == S.PENDING_REVIEW and not claim.approved_by_policy
    assert [r["passed"] for r in claim.policy_results] == [True, False]
    assert claim.policy_results[-1]["rule"] == "award"
    assert "blocked" in policy.summary(claim)
    assert not claim.transitions.filter(to_status=S.APPROVED).exists()
    assert not LedgerEntry.objects.exists()


# --- off means 100% human review -------------------------------------------------------------

_tz = timezone.get_current_timezone()
orders = st.fixed_dictionaries(
    {
        "total": st.decimals(min_value=0, max_value=10**6, places=2),
        "currency": st.sampled_from(["USD", "EUR", "CAD", ""]),
        "delivered": st.booleans(),
        "kind": st.sampled_from(["amazon", "tiktok"]),
        "postal": st.sampled_from(["match", "no_match", "not_given", "unavailable"]),
        "member_days": st.integers(0, 4000),
        "approved": st.integers(0, 50),
        "rejected": st.integers(0, 5),
        "auto": st.integers(0, 50),
    }
)
versions = st.builds(
    ApprovalPolicy,
    enabled=st.booleans(),
    version=st.integers(1, 99),
    require_postal_match=st.booleans(),
    max_amount=st.one_of(st.none(), st.decimals(min_value=0, max_value=10**6, places=2)),
    require_delivered=st.booleans(),
    min_member_days=st.one_of(st.none(), st.integers(0, 4000)),
    min_approved_claims=st.one_of(st.none(), st.integers(0, 50)),
    max_per_member_month=st.one_of(st.none(), st.integers(0, 50)),
)


def unsaved_claim(o):
    now = timezone.now()
    team = Team(currency="USD")
    return Claim(
        team=team,
        channel=Channel(team=team, kind=o["kind"]),
        member=Member(team=team, enrolled_at=now - timedelta(days=o["member_days"])),
        verified_order=VerifiedOrder(
            total=o["total"], currency=o["currency"], delivered=o["delivered"], status="X"
        ),
        postal_match=o["postal"],
        status=S.PENDING_REVIEW,
    )


@settings(max_examples=300, deadline=None)
@given(o=orders, version=versions, absent=st.booleans())
def test_property_off_or_absent_never_approves(o, version, absent):
    """Whatever the claim and whatever rule values a version holds: with no policy, or the
    newest version off, the decision is always "a person decides"."""
    history = policy.MemberHistory(o["approved"], o["rejected"], o["auto"])
    claim = unsaved_claim(o)
    version.enabled = False
    results = policy.evaluate(claim, version, history=history)
    assert policy.decide(None if absent else version, results) is False


@settings(max_examples=300, deadline=None)
@given(o=orders, version=versions)
def test_property_on_approves_only_when_every_chosen_rule_passes(o, version):
    history = policy.MemberHistory(o["approved"], o["rejected"], o["auto"])
    results = policy.evaluate(unsaved_claim(o), version, history=history)
    chosen = policy.rule_words(version, "USD")
    assert len(results) == len(chosen)  # one result per rule the version combines
    expected = version.enabled and bool(chosen) and all(r.passed for r in results)
    assert policy.decide(version, results) is expected
    if o["kind"] == "amazon" and version.require_delivered:
        assert policy.decide(version, results) is False


@pytest.mark.django_db
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(o=orders, version=versions, absent=st.booleans())
def test_property_apply_with_policy_off_changes_nothing(alice, tt, o, version, absent):
    """The same through apply_policy on stored claims: never approved, nothing recorded."""
    member = Member.objects.create(team=tt.team, email=f"m{next(_orders)}@example.com", name="M")
    Member.objects.filter(pk=member.pk).update(
        enrolled_at=timezone.now() - timedelta(days=o["member_days"])
    )
    for status, n in ((S.AWARDED, min(o["approved"], 3)), (S.REJECTED, min(o["rejected"], 1))):
        for _ in range(n):
            claim_of(member, tt, status=status)
    claim = claim_of(
        member,
        tt,
        total=str(o["total"]),
        currency=o["currency"] or "USD",
        delivered=o["delivered"],
        postal_match=o["postal"],
    )
    ApprovalPolicy.objects.filter(channel=tt).delete()
    if not absent:
        version.pk, version.enabled = None, False
        version.team, version.channel, version.changed_by = tt.team, tt, alice
        version.save()
    after = policy.apply_policy(claim)
    assert after.status == S.PENDING_REVIEW and not after.approved_by_policy
    assert after.policy_version is None and after.policy_results == []
    assert after.reviewed_by is None
    assert not LedgerEntry.objects.filter(member=member).exists()


@pytest.mark.parametrize("state", ["absent", "off-with-rules", "on-then-off"])
def test_verified_claims_wait_for_a_person_when_the_policy_is_off(
    state, alice, member_a, tiktok_on, demo, tiktok_postal
):
    age(member_a, 400)
    claim_of(member_a, tiktok_on, status=S.AWARDED)
    if state == "off-with-rules":
        all_rules(alice, tiktok_on, enabled=False)
    elif state == "on-then-off":
        all_rules(alice, tiktok_on)
        policy.policy_change(channel=tiktok_on, actor=alice, enabled=False)
    claim = submit(member_a, tiktok_on, demo["tiktok"]["order_id"], postal=tiktok_postal)
    assert claim.status == S.PENDING_REVIEW
    assert not claim.approved_by_policy and claim.policy_version is None
    assert claim.policy_results == [] and claim.reviewed_by is None
    assert not LedgerEntry.objects.filter(member=member_a).exists()


# --- changes: validated, versioned, audited --------------------------------------------------


def test_changes_make_new_versions_and_keep_old_ones(alice, team_a, tt):
    v1 = policy.policy_change(channel=tt, actor=alice, enabled=True, max_amount="100")
    before = ApprovalPolicy.objects.filter(pk=v1.pk).values().get()
    v2 = policy.policy_change(channel=tt, actor=alice, max_amount="250", note="raised")
    v3 = policy.policy_change(channel=tt, actor=alice, enabled=False)
    assert [v1.version, v2.version, v3.version] == [1, 2, 3]
    assert ApprovalPolicy.objects.filter(pk=v1.pk).values().get() == before  # never edited
    v2.refresh_from_db()
    assert (v2.enabled, v2.max_amount, v2.changed_by, v2.note) == (
        True,
        Decimal("250.00"),
        alice,
        "raised",
    )
    assert v1.created_at <= v2.created_at <= v3.created_at
    assert policy.current_policy(tt) == v3 and not v3.enabled
    assert v3.max_amount == Decimal("250.00")  # settings not given carry over
    assert policy.changes(v1, v2, "USD") == [
        "changed: amount at most 100.00 USD → amount at most 250.00 USD"
    ]
    assert policy.changes(v2, v3, "USD") == ["turned off"]
    # the same settings again write nothing
    assert policy.policy_change(channel=tt, actor=alice, enabled=False) == v3
    assert ApprovalPolicy.objects.filter(channel=tt).count() == 3


@pytest.mark.parametrize(
    ("values", "field", "words"),
    [
        ({"enabled": True}, "enabled", "at least one rule"),
        ({"enabled": True, "require_postal_match": False}, "enabled", "at least one rule"),
        ({"max_amount": "-1"}, "max_amount", "more than 0"),
        ({"max_amount": "abc"}, "max_amount", "is a number"),
        ({"max_amount": "1.005"}, "max_amount", "two decimals"),
        ({"min_member_days": 0}, "min_member_days", "from 1"),
        ({"min_approved_claims": "-3"}, "min_approved_claims", "from 1"),
        ({"max_per_member_month": "x"}, "max_per_member_month", "whole number"),
        ({"colour": "red"}, None, "Unknown policy setting"),
    ],
)
def test_bad_changes_are_refused_and_write_nothing(alice, tt, values, field, words):
    with pytest.raises(errors.InvalidInput) as exc:
        policy.policy_change(channel=tt, actor=alice, **values)
    assert words in exc.value.message and exc.value.field == field
    assert not ApprovalPolicy.objects.exists()


def test_only_the_team_admins_change_it(bob, charlie, team_a, tt):
    for user in (bob, charlie):
        with pytest.raises(NotAllowed):
            policy.policy_change(channel=tt, actor=user, enabled=True, max_amount="10")
    admin = MembershipFactory(team=team_a, role="org_admin").user
    assert policy.policy_change(channel=tt, actor=admin, require_delivered=True).version == 1


# --- concurrency (PostgreSQL, threads) -------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_monthly_limit_holds_when_a_members_claims_are_judged_at_once(alice, member_a):
    from django.db import connection

    assert connection.vendor == "postgresql"
    channel = make_channel(member_a.team, "tiktok", config={}, secrets={})
    policy.policy_change(channel=channel, actor=alice, enabled=True, max_per_member_month=2)
    claims = [claim_of(member_a, channel) for _ in range(8)]
    results = run_concurrently(8, lambda i: policy.apply_policy(claims[i]))
    assert all(isinstance(r, Claim) for r in results), results
    done = Claim.objects.filter(member=member_a)
    assert done.filter(approved_by_policy=True, status=S.AWARDED).count() == 2
    held = done.filter(status=S.PENDING_REVIEW)
    assert held.count() == 6
    for claim in held:
        assert claim.policy_results[0]["rule"] == "per_month"
        assert not claim.policy_results[0]["passed"]
    assert LedgerEntry.objects.filter(member=member_a).count() == 2


@pytest.mark.django_db(transaction=True)
def test_two_admins_saving_at_once_get_consecutive_versions(alice, team_a):
    channel = make_channel(team_a, "amazon", config={}, secrets={})
    results = run_concurrently(
        8, lambda i: policy.policy_change(channel=channel, actor=alice, max_amount=str(10 + i))
    )
    assert all(isinstance(r, ApprovalPolicy) for r in results), results
    assert sorted(r.version for r in results) == list(range(1, 9))


# --- the console page ------------------------------------------------------------------------


def page_of(channel):
    return f"/console/claims/{channel.public_id}/policy/"


def test_overview_links_to_each_channels_policy(alice, bob, tt):
    body = signed_in(bob).get("/console/claims/").content.decode()
    assert page_of(tt) in body and "Auto-approval: <strong>off</strong>" in body
    policy.policy_change(channel=tt, actor=alice, enabled=True, max_amount="10")
    body = signed_in(alice).get("/console/claims/").content.decode()
    assert "Auto-approval: <strong>on</strong> (version 1)" in body


def test_admin_turns_it_on_with_confirmation_and_off_again(alice, tt):
    client = signed_in(alice)
    page = client.get(page_of(tt))
    html = page.content.decode()
    assert page.status_code == 200
    assert "without a person looking at them; with it off, every claim waits for a reviewer" in html
    assert 'name="confirm"' in html and "Save policy" in html
    assert 'id="id_require_delivered"' in html and 'for="id_max_amount"' in html

    data = {"enabled": "on", "require_delivered": "on", "use_max_amount": "on", "max_amount": "120"}
    refused = client.post(page_of(tt), data)
    assert refused.status_code == 400
    assert "Tick this box to confirm" in refused.content.decode()
    assert not ApprovalPolicy.objects.exists()

    missing = client.post(page_of(tt), {**data, "confirm": "on", "max_amount": ""})
    assert "Give a number for this rule" in missing.content.decode()
    nothing = client.post(page_of(tt), {"enabled": "on", "confirm": "on"})
    assert "Choose at least one rule" in nothing.content.decode()
    assert not ApprovalPolicy.objects.exists()

    done = client.post(page_of(tt), {**data, "confirm": "on", "note": "pilot"}, follow=True)
    html = done.content.decode()
    assert "auto-approval is on (version 1)" in html
    v1 = policy.current_policy(tt)
    assert (v1.enabled, v1.require_delivered, v1.max_amount, v1.changed_by, v1.note) == (
        True,
        True,
        Decimal("120.00"),
        alice,
        "pilot",
    )
    assert 'id="policy-v1"' in html and "created, on" in html

    # turning it off needs no confirmation; the history says what changed
    off = client.post(page_of(tt), {"require_delivered": "on"}, follow=True).content.decode()
    assert "auto-approval is off (version 2)" in off
    assert "turned off; removed: amount at most 120.00 USD" in off
    assert ApprovalPolicy.objects.filter(channel=tt).count() == 2


def test_amazon_page_explains_the_delivered_rule(alice, az):
    html = signed_in(alice).get(page_of(az)).content.decode()
    assert "Amazon&#x27;s Orders API does not report delivery" in html
    assert 'aria-describedby="id_require_delivered_helptext"' in html


def test_reviewer_reads_only_and_other_teams_get_404(alice, bob, charlie, tt):
    policy.policy_change(channel=tt, actor=alice, enabled=True, max_amount="10")
    page = signed_in(bob).get(page_of(tt))
    html = page.content.decode()
    assert page.status_code == 200 and "amount at most 10.00 USD" in html
    assert "Save policy" not in html and "only the team's owner or an admin" in html
    assert signed_in(bob).post(page_of(tt), {"enabled": ""}).status_code == 403
    assert signed_in(charlie).get(page_of(tt)).status_code == 404
    assert signed_in(charlie).post(page_of(tt), {"enabled": ""}).status_code == 404
    assert ApprovalPolicy.objects.count() == 1 and policy.current_policy(tt).enabled


def test_admin_history_of_versions_is_read_only_and_scoped(alice, charlie, tt):
    v1 = policy.policy_change(channel=tt, actor=alice, enabled=True, max_amount="10")
    client = signed_in(alice)
    listing = client.get("/admin/claims/approvalpolicy/").content.decode()
    assert "amount at most 10.00 USD" in listing
    assert client.get("/admin/claims/approvalpolicy/add/").status_code == 403
    client.post(f"/admin/claims/approvalpolicy/{v1.pk}/change/", {"enabled": ""})
    assert (
        client.post(f"/admin/claims/approvalpolicy/{v1.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    v1.refresh_from_db()
    assert v1.enabled and ApprovalPolicy.objects.count() == 1
    other = signed_in(charlie).get("/admin/claims/approvalpolicy/").content.decode()
    assert "10.00 USD" not in other


def test_console_lists_the_claims_the_policy_judged(alice, member_a, tt):
    policy.policy_change(channel=tt, actor=alice, enabled=True, max_amount="100")
    held = policy.apply_policy(claim_of(member_a, tt, total="250.00"))
    passed = policy.apply_policy(claim_of(member_a, tt, total="20.00"))
    assert passed.approved_by_policy and not held.approved_by_policy
    html = signed_in(alice).get(page_of(tt)).content.decode()
    assert "Policy v1: amount 250.00 USD is above 100.00 USD" in html
    assert f"{passed.public_id}</a>" in html and "approved by policy v1" in html
