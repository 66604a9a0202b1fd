"""The review queue in Django admin: approve / reject through the services, bulk actions,
tenancy, a constant number of queries, red flags."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from claims import pacing, services
from claims.models import Claim, ClaimStatus, ClaimTransition, Rollout, VerifiedOrder
from loyalty.models import EarningPolicy, LedgerEntry, Member

from .factories import MemberFactory
from .sandbox_fixtures import make_channel

S = ClaimStatus
LIST = "/admin/claims/claim/"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_buckets():
    pacing.reset()
    yield
    pacing.reset()


@pytest.fixture
def amazon_on(amazon_channel, team_a):
    EarningPolicy.objects.update_or_create(team=team_a, currency="USD", defaults={"rate": "2"})
    services.rollout_set(channel=amazon_channel, stage="on")
    return amazon_channel


@pytest.fixture
def verified(member_a, amazon_on, demo, django_capture_on_commit_callbacks):
    """A claim of the demo Amazon order, verified by the emulator and waiting for review."""
    with django_capture_on_commit_callbacks(execute=True):
        claim = services.claim_submit(
            member=member_a,
            channel_public_id=amazon_on.public_id,
            order_number=demo["amazon"]["order_id"],
        )
    claim = Claim.objects.get(pk=claim.pk)
    assert claim.status == S.PENDING_REVIEW
    return claim


def url(claim, what="change"):
    return f"{LIST}{claim.pk}/{what}/"


def fake_claims(team, channel, n, *, status=S.PENDING_REVIEW, total="20.00", **order):
    """Claims made straight in the database (no emulator), each with its verified order."""
    made = []
    for i in range(n):
        member = MemberFactory(team=team)
        vo = VerifiedOrder.objects.create(
            team=team,
            channel=channel,
            order_id=f"{channel.pk}-{Claim.objects.count()}-{i}",
            total=Decimal(total),
            currency="USD",
            purchased_at=timezone.now() - timedelta(days=3),
            delivered=order.get("delivered", True),
            buyer_match=order.get("buyer_match", "match"),
        )
        made.append(
            Claim.objects.create(
                team=team,
                member=member,
                channel=channel,
                order_number=vo.order_id,
                status=status,
                verified_order=vo,
                points_preview=40,
                postal_match=order.get("buyer_match", "match"),
            )
        )
    return made


# --- approve / reject on the claim's page ----------------------------------------------------


def test_bob_approves_on_the_claim_page_once(client, bob, member_a, verified, demo):
    client.force_login(bob)
    page = client.get(url(verified))
    assert page.status_code == 200
    html = page.content.decode()
    assert demo["amazon"]["order_id"] in html
    assert f'action="{url(verified, "approve")}"' in html
    assert f'action="{url(verified, "reject")}"' in html

    r = client.post(url(verified, "approve"), {"reason": "receipt checked"})
    assert r.status_code == 302 and r["Location"] == LIST  # no other pending claim
    claim = Claim.objects.get(pk=verified.pk)
    assert claim.status == S.AWARDED and claim.reviewed_by == bob
    entry = LedgerEntry.objects.get(member=member_a)
    assert entry.idempotency_key == f"amazon-order:{demo['amazon']['order_id']}"
    assert entry.points == claim.points_awarded == claim.points_preview
    assert Member.objects.get(pk=member_a.pk).balance == entry.points
    assert claim.transitions.filter(to_status=S.APPROVED, reason="receipt checked").exists()

    # a second approval is refused as an admin message and awards nothing more
    r = client.post(url(verified, "approve"), follow=True)
    assert "cannot become approved" in r.content.decode().lower()
    assert LedgerEntry.objects.filter(member=member_a).count() == 1
    assert Member.objects.get(pk=member_a.pk).balance == entry.points


def test_approve_goes_on_to_the_next_pending_claim(client, bob, team_a, amazon_channel):
    first, second = fake_claims(team_a, amazon_channel, 2)
    client.force_login(bob)
    r = client.post(url(second, "approve"))
    assert r.status_code == 302 and r["Location"] == url(first)
    assert Claim.objects.get(pk=second.pk).status == S.AWARDED


def test_get_on_approve_changes_nothing(client, bob, verified):
    client.force_login(bob)
    r = client.get(url(verified, "approve"))
    assert r.status_code == 302 and r["Location"] == url(verified)
    assert Claim.objects.get(pk=verified.pk).status == S.PENDING_REVIEW


def test_reject_requires_a_reason_from_the_list(client, bob, member_a, verified):
    client.force_login(bob)
    before = ClaimTransition.objects.count()
    r = client.post(url(verified, "reject"), {"reason": "just because"}, follow=True)
    assert "choose a reason" in r.content.decode()
    r = client.post(url(verified, "reject"), {"reason_choice": "other", "reason": " "}, follow=True)
    assert "Not rejected" in r.content.decode()
    assert Claim.objects.get(pk=verified.pk).status == S.PENDING_REVIEW
    assert ClaimTransition.objects.count() == before

    r = client.post(
        url(verified, "reject"),
        {"reason_choice": "suspected fraud", "reason": "receipt edited"},
    )
    assert r.status_code == 302
    claim = Claim.objects.get(pk=verified.pk)
    assert claim.status == S.REJECTED
    assert claim.status_reason == "suspected fraud: receipt edited"
    last = claim.transitions.last()
    assert (last.to_status, last.actor, last.reason) == (
        S.REJECTED,
        bob,
        "suspected fraud: receipt edited",
    )
    assert not LedgerEntry.objects.filter(member=member_a).exists()


# --- bulk actions ----------------------------------------------------------------------------


def test_bulk_approve(client, bob, team_a, amazon_channel):
    claims = fake_claims(team_a, amazon_channel, 3)
    done = fake_claims(team_a, amazon_channel, 1, status=S.REJECTED)
    client.force_login(bob)
    r = client.post(
        LIST,
        {"action": "approve_selected", ACTION_CHECKBOX_NAME: [c.pk for c in claims + done]},
        follow=True,
    )
    assert "3 claim(s) approved (1 not waiting for review, left alone)" in r.content.decode()
    for claim in claims:
        claim.refresh_from_db()
        assert claim.status == S.AWARDED
        assert LedgerEntry.objects.filter(member=claim.member, points=claim.points_awarded).count()
    assert Claim.objects.get(pk=done[0].pk).status == S.REJECTED


def test_bulk_reject_asks_for_the_reason_then_records_it(client, bob, team_a, amazon_channel):
    claims = fake_claims(team_a, amazon_channel, 2)
    client.force_login(bob)
    ids = [c.pk for c in claims]
    page = client.post(LIST, {"action": "reject_selected", ACTION_CHECKBOX_NAME: ids})
    assert page.status_code == 200 and "Reject claims" in page.content.decode()
    assert Claim.objects.filter(status=S.REJECTED).count() == 0

    r = client.post(
        LIST,
        {
            "action": "reject_selected",
            "apply": "1",
            ACTION_CHECKBOX_NAME: ids,
            "reason_choice": "duplicate",
            "reason": "bulk rejected by reviewer",
        },
        follow=True,
    )
    assert "2 claim(s) rejected" in r.content.decode()
    for claim in claims:
        claim.refresh_from_db()
        assert claim.status == S.REJECTED
        assert claim.status_reason == "duplicate: bulk rejected by reviewer"
        assert claim.transitions.last().actor == bob


# --- tenancy ---------------------------------------------------------------------------------


def test_bob_sees_the_queue_of_team_a(client, bob, verified):
    client.force_login(bob)
    html = client.get(LIST).content.decode()
    assert verified.public_id in html and "ann@example.com" in html


def test_charlie_sees_and_changes_nothing_of_team_a(
    client, charlie, team_b, member_a, verified, amazon_channel
):
    b_channel = make_channel(team_b, "amazon", name="Beta Amazon", config={}, secrets={})
    client.force_login(charlie)
    html = client.get(LIST).content.decode()
    assert verified.public_id not in html and "ann@example.com" not in html
    # his channel filter lists only his team's channels; filtering to A's shows nothing
    assert b_channel.public_id in html and amazon_channel.public_id not in html
    filtered = client.get(LIST, {"channel": amazon_channel.public_id}).content.decode()
    assert verified.public_id not in filtered
    searched = client.get(LIST, {"q": verified.public_id}).content.decode()
    assert f">{verified.public_id}</a>" not in searched and "0 results" in searched

    r = client.get(url(verified), follow=True)
    assert "doesn’t exist" in r.content.decode() or r.status_code == 404
    for what, data in [
        ("approve", {}),
        ("reject", {"reason_choice": "suspected fraud", "reason": "x"}),
    ]:
        r = client.post(url(verified, what), data, follow=True)
        assert "doesn’t exist" in r.content.decode() or r.status_code == 404
    client.post(LIST, {"action": "approve_selected", ACTION_CHECKBOX_NAME: [verified.pk]})
    claim = Claim.objects.get(pk=verified.pk)
    assert claim.status == S.PENDING_REVIEW and claim.reviewed_by is None
    assert not LedgerEntry.objects.filter(member=member_a).exists()
    for path in ["/admin/claims/claimtransition/", "/admin/claims/verifiedorder/"]:
        body = client.get(path).content.decode()
        assert verified.public_id not in body and "Amazon" not in body
    assert "Alpha" not in client.get("/admin/claims/rollout/").content.decode()


def test_no_add_or_delete_of_claims(client, alice, verified):
    client.force_login(alice)
    assert client.get(f"{LIST}add/").status_code == 403
    assert client.post(url(verified, "delete"), {"post": "yes"}).status_code == 403
    assert Claim.objects.filter(pk=verified.pk).exists()


def test_team_admin_changes_the_rollout_stage(client, alice, bob, amazon_on):
    rollout = Rollout.objects.get(channel=amazon_on)
    path = f"/admin/claims/rollout/{rollout.pk}/change/"
    client.force_login(bob)  # a reviewer reads only
    client.post(path, {"stage": "off", "claim_window_days": 30})
    assert Rollout.objects.get(pk=rollout.pk).stage == "on"
    client.force_login(alice)
    r = client.post(path, {"stage": "staff", "claim_window_days": 30})
    assert r.status_code == 302
    rollout.refresh_from_db()
    assert (rollout.stage, rollout.claim_window_days) == ("staff", 30)


# --- the changelist: order, constant queries, filters ----------------------------------------


def test_pending_review_comes_first(client, bob, team_a, amazon_channel):
    (pending,) = fake_claims(team_a, amazon_channel, 1)
    (newer,) = fake_claims(team_a, amazon_channel, 1, status=S.REJECTED)
    client.force_login(bob)
    html = client.get(LIST).content.decode()
    assert html.index(pending.public_id) < html.index(newer.public_id)


def _list_queries(client, **params):
    with CaptureQueriesContext(connection) as ctx:
        r = client.get(LIST, params)
    assert r.status_code == 200
    return len(ctx.captured_queries), r.content.decode()


def test_changelist_query_count_is_constant(client, bob, team_a, amazon_channel):
    client.force_login(bob)
    fake_claims(team_a, amazon_channel, 5)
    five, html = _list_queries(client)
    assert html.count("clm_") >= 5
    fake_claims(team_a, amazon_channel, 45, total="900.00", delivered=False)
    fifty, html = _list_queries(client)
    assert html.count("clm_") >= 50
    assert five == fifty
    # filters and search too
    filtered = {
        "amount": "gt200",
        "age": "today",
        "buyer_match": "match",
        "status": "pending_review",
    }
    assert _list_queries(client, **filtered)[0] == _list_queries(client, **filtered)[0]


def test_filters(client, bob, team_a, amazon_channel):
    small = fake_claims(team_a, amazon_channel, 1, total="10.00")[0]
    large = fake_claims(team_a, amazon_channel, 1, total="300.00", buyer_match="no_match")[0]
    old = fake_claims(team_a, amazon_channel, 1, total="100.00")[0]
    Claim.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=30))
    client.force_login(bob)

    def shown(**params):
        html = client.get(LIST, params).content.decode()
        return {c.public_id for c in (small, large, old) if c.public_id in html}

    assert shown(amount="lt50") == {small.public_id}
    assert shown(amount="50-200") == {old.public_id}
    assert shown(amount="gt200") == {large.public_id}
    assert shown(buyer_match="no_match") == {large.public_id}
    assert shown(age="older") == {old.public_id}
    assert shown(age="today") == {small.public_id, large.public_id}
    assert shown(q=large.order_number) == {large.public_id}
    assert shown(q=small.member.email) == {small.public_id}


def test_red_flags_shown(client, bob, team_a, amazon_channel):
    fake_claims(team_a, amazon_channel, 5, total="20.00")  # the team's median is 20
    (claim,) = fake_claims(
        team_a, amazon_channel, 1, total="100.00", delivered=False, buyer_match="no_match"
    )
    member = claim.member
    Member.objects.filter(pk=member.pk).update(enrolled_at=timezone.now())  # after the purchase
    for n in range(2):  # three claims by this member today
        Claim.objects.create(
            team=team_a, member=member, channel=amazon_channel, order_number=f"x-{n}"
        )
    client.force_login(bob)
    html = client.get(url(claim)).content.decode()
    for flag in [
        "member joined after the purchase date",
        "buyer postal code does not match",
        "3 claims by this member today",
        "amount over 3× the team",
        "order not yet delivered",
    ]:
        assert flag in html, flag
    # the member's other claims and the audit are on the page too
    assert "x-0" in html and "x-1" in html
    listing = client.get(LIST).content.decode()
    assert "⚑ 5" in listing
