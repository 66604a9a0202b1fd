"""The refund claw-back job against the platform emulator: cancellations and refunds (partial,
repeated) after an award claw back once each, proportionally; a pass resumes where it stopped;
the platforms' rate limits are never exceeded; calls scale with changes, not with orders."""

from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from channels_app.models import Status
from claims import clawback, pacing, services
from claims.models import Claim, ClaimStatus, ClawbackCursor, VerifiedOrder
from claims.tasks import clawback_pass
from loyalty import services as loyalty_services
from loyalty.models import EntryKind, LedgerEntry

from .factories import MemberFactory

S = ClaimStatus
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _settings(settings):
    # The emulator publishes changes at once; TikTok's clock has whole seconds, so windows end
    # a little ahead of now to include this second's changes.
    settings.CLAWBACK_SETTLE_SECONDS = -2
    pacing.reset()
    yield
    pacing.reset()


def owner_of(sandbox, kind):
    return sandbox.demo[kind]["seller_id" if kind == "amazon" else "shop_id"]


def emulator_order(sandbox, kind, total, *, days_ago=3):
    created = timezone.now().timestamp() - days_ago * 86400
    if kind == "amazon":
        fields = {"status": "SHIPPED", "created": created, "total": Decimal(total)}
    else:
        fields = {"status": "DELIVERED", "create_time": int(created), "sub_total": total}
    return sandbox.add_order(kind, owner_of(sandbox, kind), **fields)


def awarded_claim(channel, order_id, total, *, member=None, days_ago=3):
    """A claim of ``order_id`` awarded through the ledger (as a reviewer's approval does)."""
    member = member or MemberFactory(team=channel.team)
    order = VerifiedOrder.objects.create(
        team=channel.team,
        channel=channel,
        order_id=order_id,
        status="SHIPPED",
        total=Decimal(total),
        currency="USD",
        purchased_at=timezone.now() - timedelta(days=days_ago),
    )
    claim = Claim.objects.create(
        team=channel.team,
        member=member,
        channel=channel,
        order_number=order_id,
        status=S.PENDING_REVIEW,
        verified_order=order,
    )
    result = loyalty_services.points_award(
        member=member,
        key=services.award_key(channel.kind, order_id),
        source=channel.kind,
        amount=Decimal(total),
        currency="USD",
    )
    services.claim_transition(claim=claim, to=S.APPROVED, reason="approved")
    return services.claim_transition(
        claim=claim,
        to=S.AWARDED,
        reason=f"+{result.points} points",
        points_awarded=result.points,
        ledger_entry=result.entry,
    )


def reversal_points(claim):
    key = services.award_key(claim.channel.kind, claim.verified_order.order_id)
    return sorted(
        e.points
        for e in LedgerEntry.objects.filter(
            team=claim.team,
            kind=EntryKind.CLAW_BACK,
            idempotency_key__startswith=f"claw-back:{key}",
        )
    )


def ledger_ok():
    out = StringIO()
    call_command("check_ledger", stdout=out)
    return "ledger OK" in out.getvalue()


@pytest.mark.parametrize("kind", ["amazon", "tiktok"])
def test_cancel_and_refunds_after_award_claw_back_once_each(kind, request, sandbox, team_a, rate_a):
    channel = request.getfixturevalue(f"{kind}_channel")
    ids = [emulator_order(sandbox, kind, "40.00") for _ in range(4)]
    partly, twice, cancelled, untouched = (awarded_claim(channel, i, "40.00") for i in ids)
    assert partly.points_awarded == 80

    sandbox.refund_order(kind, ids[0], "10.00")  # a quarter of the order
    sandbox.refund_order(kind, ids[1], "10.00")
    sandbox.refund_order(kind, ids[1], "30.00")  # refunded twice: now the whole order
    sandbox.cancel_order(kind, ids[2])

    made = clawback_pass()
    assert made == 4
    for claim in (partly, twice, cancelled, untouched):
        claim.refresh_from_db()
    assert reversal_points(partly) == [-20]
    assert partly.status == S.AWARDED and partly.points_reversed == 20
    assert "20 reversed: order partly refunded" in services.status_words(partly)
    assert reversal_points(twice) == [-60, -20]
    assert twice.status == S.REVERSED and twice.points_reversed == 80
    assert services.status_words(twice) == "reversed: order refunded"
    assert reversal_points(cancelled) == [-80]
    assert cancelled.status == S.REVERSED
    assert services.status_words(cancelled) == "reversed: order cancelled"
    assert untouched.status == S.AWARDED and reversal_points(untouched) == []
    assert untouched.member.__class__.objects.get(pk=untouched.member_id).balance == 80
    assert VerifiedOrder.objects.get(pk=twice.verified_order_id).refunded_total == Decimal("40")

    # Replays — the next pass re-reads the overlap, a second run of the same windows — add
    # nothing; a later refund of the partly refunded order claws back its share only.
    assert clawback_pass() == 0
    sandbox.refund_order(kind, ids[0], "30.00")
    assert clawback_pass() == 1
    partly.refresh_from_db()
    assert reversal_points(partly) == [-60, -20]
    assert partly.status == S.REVERSED
    assert partly.transitions.filter(from_status=S.AWARDED, to_status=S.AWARDED).count() == 1
    assert ledger_ok()


def test_refund_before_the_award_is_still_clawed_back(sandbox, amazon_channel, team_a, rate_a):
    first = emulator_order(sandbox, "amazon", "20.00")
    awarded_claim(amazon_channel, first, "20.00")
    late = emulator_order(sandbox, "amazon", "50.00", days_ago=5)
    sandbox.refund_order("amazon", late, "25.00")
    assert clawback_pass() == 0  # read, but nothing had been earned on it yet
    claim = awarded_claim(amazon_channel, late, "50.00")  # a reviewer approves it afterwards
    assert clawback_pass() == 1
    claim.refresh_from_db()
    assert claim.points_reversed == 50 and claim.status == S.AWARDED


def test_an_interrupted_pass_resumes_from_its_page(
    settings, sandbox, amazon_channel, team_a, rate_a
):
    ids = [emulator_order(sandbox, "amazon", "10.00") for _ in range(250)]
    claims = [awarded_claim(amazon_channel, i, "10.00") for i in ids[:5]] + [
        awarded_claim(amazon_channel, ids[-1], "10.00")
    ]
    for order_id in ids:
        sandbox.refund_order("amazon", order_id, "5.00")  # 250 refund events: 3 pages
    sandbox.reset_calls()

    # The worker dies while applying the second page of refunds.
    real_apply, pages = clawback._apply, []

    def dying_apply(channel, stream, items):
        if stream == "refunds":
            pages.append(len(items))
            if len(pages) == 2:
                raise RuntimeError("worker killed")
        return real_apply(channel, stream, items)

    clawback._apply = dying_apply
    try:
        died = {r.stream: r for r in clawback.run_pass()}
    finally:
        clawback._apply = real_apply
    assert died["refunds"].outcome == "failed" and "RuntimeError" in died["refunds"].message
    assert died["orders"].outcome == "done"  # the other feed was not held up
    cursor = ClawbackCursor.objects.get(channel=amazon_channel, stream="refunds")
    assert cursor.page_token and cursor.lease_until is None  # page 1 done, page 2 to do
    done = LedgerEntry.objects.filter(kind=EntryKind.CLAW_BACK).count()
    assert 0 < done < 6

    # A new process (fresh buckets, fresh token cache) resumes at page 2, not page 1.
    pacing.reset()
    reports = clawback.run_pass()
    refunds = next(r for r in reports if r.stream == "refunds")
    assert refunds.outcome == "done" and refunds.pages == 2
    assert sandbox.call_count("amazon", "listFinancialEvents") == 4  # 1, 2 (died), 2, 3
    for claim in claims:
        claim.refresh_from_db()
        assert reversal_points(claim) == [-10] and claim.points_reversed == 10
    assert LedgerEntry.objects.filter(kind=EntryKind.CLAW_BACK).count() == 6
    cursor.refresh_from_db()
    assert cursor.page_token == "" and cursor.window_until is None
    assert ledger_ok()


def test_paced_pass_stays_inside_the_rate_limit_and_continues_later(
    settings, sandbox, amazon_channel, team_a, rate_a
):
    # Amazon's searchOrders plan with a small burst, and ours the same.
    sandbox.set_rate_limit("searchOrders", 0.0056, 5)
    settings.PLATFORM_CALL_LIMITS = {"amazon.searchOrders": (0.0056, 5)}
    ids = [emulator_order(sandbox, "amazon", "10.00") for _ in range(450)]  # 5 pages of changes
    target = awarded_claim(amazon_channel, ids[-1], "10.00")
    for order_id in ids:
        sandbox.update_order("amazon", order_id, status="SHIPPED")
    sandbox.cancel_order("amazon", ids[-1])
    sandbox.reset_calls()

    first = {r.stream: r for r in clawback.run_pass()}
    assert first["orders"].outcome == "paced" and first["orders"].pages == 3
    assert first["orders"].retry_in > 100  # one token per ~3 minutes
    assert sandbox.throttled_count("amazon", "searchOrders") == 0

    # Later (the buckets refilled on both sides): the pass continues from page 4.
    pacing.reset()
    sandbox.set_rate_limit("searchOrders", 0.0056, 5)
    second = {r.stream: r for r in clawback.run_pass()}
    assert second["orders"].outcome == "done" and second["orders"].pages == 2
    assert sandbox.call_count("amazon", "searchOrders") == 5
    assert sandbox.throttled_count("amazon", "searchOrders") == 0
    target.refresh_from_db()
    assert target.status == S.REVERSED and reversal_points(target) == [-20]


def test_calls_follow_changes_not_approved_orders(sandbox, tiktok_channel, team_a, rate_a):
    ids = [emulator_order(sandbox, "tiktok", "10.00") for _ in range(60)]
    for order_id in ids:
        awarded_claim(tiktok_channel, order_id, "10.00")
    clawback_pass()  # the first window
    sandbox.refund_order("tiktok", ids[7], "10.00")
    sandbox.reset_calls()
    assert clawback_pass() == 1
    assert sandbox.call_count("tiktok", "searchOrders") == 1
    assert sandbox.call_count("tiktok", "searchReturns") == 1
    assert sandbox.call_count("tiktok", "getOrderDetail") == 0


def test_a_platform_fault_leaves_the_watermark_and_is_retried(
    sandbox, amazon_channel, team_a, rate_a
):
    order_id = emulator_order(sandbox, "amazon", "30.00")
    claim = awarded_claim(amazon_channel, order_id, "30.00")
    sandbox.refund_order("amazon", order_id)
    sandbox.set_fault("amazon", "listFinancialEvents", "500", times=1)
    reports = {r.stream: r for r in clawback.run_pass()}
    assert reports["refunds"].outcome == "failed"
    cursor = ClawbackCursor.objects.get(channel=amazon_channel, stream="refunds")
    assert cursor.last_error and cursor.window_until is not None
    amazon_channel.refresh_from_db()
    assert amazon_channel.status == Status.CONNECTED  # temporary: nobody needs to act
    assert clawback_pass() == 1
    claim.refresh_from_db()
    assert claim.status == S.REVERSED


def test_revoked_credentials_put_the_channel_in_needs_attention(
    sandbox, amazon_channel, team_a, rate_a
):
    awarded_claim(amazon_channel, emulator_order(sandbox, "amazon", "30.00"), "30.00")
    sandbox.set_fault("amazon", "*", "revoked")
    reports = clawback.run_pass()
    assert {r.outcome for r in reports} == {"failed"}
    amazon_channel.refresh_from_db()
    assert amazon_channel.status == Status.NEEDS_ATTENTION
    sandbox.clear_faults()
    assert clawback.run_pass() == []  # no longer connected: left alone until a person fixes it


def test_one_run_at_a_time_per_feed(sandbox, amazon_channel, team_a, rate_a):
    awarded_claim(amazon_channel, emulator_order(sandbox, "amazon", "30.00"), "30.00")
    clawback.run_pass()
    ClawbackCursor.objects.update(lease_until=timezone.now() + timedelta(minutes=5))
    assert {r.outcome for r in clawback.run_pass()} == {"busy"}
    ClawbackCursor.objects.update(lease_until=timezone.now() - timedelta(seconds=1))
    assert {r.outcome for r in clawback.run_pass()} == {"done"}  # a dead worker's lease expired


def test_channels_without_awards_are_not_called(sandbox, amazon_channel, team_a):
    sandbox.reset_calls()
    assert {r.outcome for r in clawback.run_pass()} == {"idle"}
    assert sandbox.call_count("amazon", "searchOrders") == 0


def test_command_runs_one_pass_for_a_team(sandbox, amazon_channel, team_a, team_b, rate_a):
    order_id = emulator_order(sandbox, "amazon", "30.00")
    awarded_claim(amazon_channel, order_id, "30.00")
    sandbox.cancel_order("amazon", order_id)
    out = StringIO()
    call_command("clawback", "--team", team_b.slug, stdout=out)
    assert "No connected" in out.getvalue()
    call_command("clawback", "--team", team_a.slug, stdout=out)
    assert "1 reversal made." in out.getvalue()
    with pytest.raises(CommandError, match="No team"):
        call_command("clawback", "--team", "nope")


def test_console_shows_how_far_refunds_were_checked(
    sandbox, amazon_channel, alice, charlie, rate_a
):

    order_id = emulator_order(sandbox, "amazon", "30.00")
    awarded_claim(amazon_channel, order_id, "30.00")
    client = Client()
    client.force_login(alice)
    assert "not checked yet" in client.get("/console/claims/").content.decode()
    sandbox.cancel_order("amazon", order_id)
    clawback.run_pass()
    page = client.get("/console/claims/").content.decode()
    assert "checked up to" in page and "1 claim reversed" in page
    sandbox.set_fault("amazon", "searchOrders", "500")
    sandbox.cancel_order("amazon", emulator_order(sandbox, "amazon", "5.00"))
    clawback.run_pass()
    page = client.get("/console/claims/").content.decode()
    assert "The last claw-back check stopped" in page
    other = Client()
    other.force_login(charlie)
    assert "checked up to" not in other.get("/console/claims/").content.decode()


def test_team_admin_checks_refunds_now_from_the_console(
    sandbox, amazon_channel, alice, bob, rate_a
):

    order_id = emulator_order(sandbox, "amazon", "30.00")
    claim = awarded_claim(amazon_channel, order_id, "30.00")
    sandbox.cancel_order("amazon", order_id)
    reviewer = Client()
    reviewer.force_login(bob)
    assert reviewer.post("/console/claims/clawback/").status_code == 403
    claim.refresh_from_db()
    assert claim.status == S.AWARDED
    admin = Client()
    admin.force_login(alice)
    page = admin.post("/console/claims/clawback/", follow=True).content.decode()
    assert "1 reversal made" in page
    claim.refresh_from_db()
    assert claim.status == S.REVERSED


def test_the_member_sees_the_reversal_in_the_portal(
    client, sandbox, amazon_channel, member_a, rate_a
):
    from .test_portal import sign_in

    partly = emulator_order(sandbox, "amazon", "40.00")
    whole = emulator_order(sandbox, "amazon", "10.00")
    awarded_claim(amazon_channel, partly, "40.00", member=member_a)
    awarded_claim(amazon_channel, whole, "10.00", member=member_a)
    sandbox.refund_order("amazon", partly, "10.00")
    sandbox.refund_order("amazon", whole)
    clawback_pass()
    sign_in(client)
    html = client.get(f"/p/{member_a.team.slug}/claims/").content.decode()
    assert "approved · +80 points · 20 reversed: order partly refunded" in html
    assert "reversed: order refunded" in html


def test_windows_reach_back_only_for_new_awards(settings, sandbox, amazon_channel, team_a, rate_a):
    """A partial refund (awarded → awarded) is not a new award: the next window starts at the
    watermark. A new award reaches the refunds feed back to its purchase, and the orders feed
    (the scarce searchOrders) only to its verification."""
    settings.PLATFORM_CALL_LIMITS = {
        "amazon.searchOrders": (0.00001, 3),  # one page per pass, then the window waits
        "amazon.listFinancialEvents": (0.00001, 3),
    }
    first = emulator_order(sandbox, "amazon", "40.00")
    claim = awarded_claim(amazon_channel, first, "40.00", days_ago=20)
    claim.transitions.update(created_at=timezone.now() - timedelta(minutes=10))  # awarded before
    sandbox.refund_order("amazon", first, "10.00")
    assert clawback_pass() == 1  # one page each: both feeds done

    def next_windows():
        clawback.run_pass()  # no token left: the windows open and wait
        return {
            c.stream: c.window_since for c in ClawbackCursor.objects.filter(channel=amazon_channel)
        }

    windows = next_windows()
    for cursor in ClawbackCursor.objects.filter(channel=amazon_channel):
        assert windows[cursor.stream] == cursor.watermark - timedelta(seconds=60)

    # A claim of an order bought 10 days ago and verified yesterday is awarded now.
    ClawbackCursor.objects.update(window_since=None, window_until=None, page_token="")
    ClawbackCursor.objects.update(last_run_at=timezone.now() - timedelta(minutes=5))
    late = awarded_claim(
        amazon_channel, emulator_order(sandbox, "amazon", "5.00"), "5.00", days_ago=10
    )
    VerifiedOrder.objects.filter(pk=late.verified_order_id).update(
        verified_at=timezone.now() - timedelta(days=1)
    )
    windows = next_windows()
    now = timezone.now()
    assert abs(windows["refunds"] - (now - timedelta(days=10))) < timedelta(minutes=1)
    assert abs(windows["orders"] - (now - timedelta(days=1))) < timedelta(minutes=1)
