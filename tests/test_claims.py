"""Order claims: the state machine, de-dup, verification through the emulator, faults, review
and PII."""

import logging

import pytest
from django.core.management import call_command

from channels_app.models import Status
from claims import pacing, services
from claims.errors import AlreadyClaimed, ClaimsClosed, NotAllowed, TooManyClaims
from claims.models import Claim, ClaimStatus, ClaimTransition, Rollout, VerifiedOrder
from claims.tasks import retry_due_claims, verify_claim
from loyalty import errors
from loyalty.models import LedgerEntry, Member
from loyalty.services import member_enroll

from .claims_fixtures import submit
from .test_channel_secrets import database_dump
from .test_concurrency import run_concurrently

S = ClaimStatus


pytestmark = pytest.mark.usefixtures("fresh_buckets")


def _submit(member, channel, number, postal=""):
    return services.claim_submit(
        member=member,
        channel_public_id=channel.public_id,
        order_number=number,
        postal_code=postal,
    )


def fresh(claim):
    return Claim.objects.get(pk=claim.pk)


def test_verify_amazon_order_goes_to_review_with_preview(member_a, amazon_on, demo):
    claim = fresh(submit(member_a, amazon_on, demo["amazon"]["order_id"]))
    assert claim.status == S.PENDING_REVIEW  # eager Celery: verified on commit
    order = claim.verified_order
    assert order.order_id == demo["amazon"]["order_id"]
    assert order.total and order.currency == "USD"
    assert claim.points_preview == int(order.total * 2)
    assert claim.postal_match == "not_given"
    assert LedgerEntry.objects.filter(member=member_a).count() == 0  # verification never awards
    steps = list(claim.transitions.values_list("from_status", "to_status"))
    assert steps == [
        (S.SUBMITTED, S.SUBMITTED),
        (S.SUBMITTED, S.VERIFYING),
        (S.VERIFYING, S.PENDING_REVIEW),
    ]
    assert services.status_words(claim).startswith("waiting for review")


def test_tiktok_postal_code_compared_in_memory_only(member_a, tiktok_on, demo):
    claim = fresh(submit(member_a, tiktok_on, demo["tiktok"]["order_id"], postal="00000"))
    assert claim.status == S.PENDING_REVIEW
    assert claim.postal_match == "no_match"
    assert claim.sealed_postal_code == ""


def test_other_sellers_order_is_not_found(member_a, amazon_on, demo):
    claim = fresh(submit(member_a, amazon_on, demo["amazon"]["other"]["order_id"]))
    assert claim.status == S.NOT_FOUND
    assert not VerifiedOrder.objects.exists()
    assert "not found" in services.status_words(claim)


def test_illegal_transition_is_refused_and_not_recorded(member_a, amazon_on, demo, bob):
    claim = fresh(submit(member_a, amazon_on, demo["amazon"]["order_id"]))
    count = ClaimTransition.objects.count()
    with pytest.raises(errors.IllegalTransition):
        services.claim_transition(claim=claim, to=S.AWARDED)
    with pytest.raises(errors.IllegalTransition):
        services.claim_transition(claim=claim, to=S.VERIFYING)
    assert ClaimTransition.objects.count() == count
    assert fresh(claim).status == S.PENDING_REVIEW


def test_approve_awards_once_and_reject_needs_reason(member_a, amazon_on, demo, bob, charlie):
    claim = fresh(submit(member_a, amazon_on, demo["amazon"]["order_id"]))
    with pytest.raises(NotAllowed):
        services.claim_approve(claim=claim, reviewer=charlie)  # another team's admin
    with pytest.raises(errors.InvalidInput):
        services.claim_reject(claim=claim, reviewer=bob, reason=" ")
    services.claim_approve(claim=claim, reviewer=bob)
    claim = fresh(claim)
    assert claim.status == S.AWARDED
    assert claim.points_awarded == claim.points_preview
    entry = LedgerEntry.objects.get(member=member_a)
    assert entry.idempotency_key == f"amazon-order:{demo['amazon']['order_id']}"
    assert entry.source == "amazon"
    with pytest.raises(errors.IllegalTransition):
        services.claim_approve(claim=claim, reviewer=bob)
    assert LedgerEntry.objects.filter(member=member_a).count() == 1
    assert Member.objects.get(pk=member_a.pk).balance == entry.points
    tos = list(claim.transitions.values_list("to_status", "actor"))
    assert (S.APPROVED, bob.pk) in tos and (S.AWARDED, bob.pk) in tos
    assert services.status_words(claim) == f"approved · +{entry.points} points"

    # the order earned: claiming it again, by anyone, is refused
    other = member_enroll(team=member_a.team, email="zed@example.com", password="pw-member-2")
    with pytest.raises(AlreadyClaimed) as exc:
        submit(other, amazon_on, demo["amazon"]["order_id"])
    assert "ann" not in exc.value.message.lower()


def test_reject_records_reason(member_a, tiktok_on, demo, bob):
    claim = fresh(submit(member_a, tiktok_on, demo["tiktok"]["order_id"]))
    services.claim_reject(claim=claim, reviewer=bob, reason="receipt does not match")
    claim = fresh(claim)
    assert claim.status == S.REJECTED
    last = claim.transitions.last()
    assert (last.from_status, last.to_status, last.actor, last.reason) == (
        S.PENDING_REVIEW,
        S.REJECTED,
        bob,
        "receipt does not match",
    )
    assert services.status_words(claim) == "rejected: receipt does not match"
    assert not LedgerEntry.objects.exists()


def test_rate_limited_then_success(member_a, amazon_on, demo, sandbox):
    sandbox.set_fault("amazon", "getOrder", "429", times=1)
    claim = fresh(submit(member_a, amazon_on, demo["amazon"]["order_id"]))
    assert claim.status == S.RETRYING
    assert claim.next_attempt_at is not None
    assert "busy" in services.status_words(claim)
    assert verify_claim(claim.pk) == S.PENDING_REVIEW or fresh(claim).status == S.RETRYING
    # the attempt above may still be early; the sweep retries when due
    Claim.objects.filter(pk=claim.pk).update(next_attempt_at=claim.created_at)
    retry_due_claims()
    assert fresh(claim).status == S.PENDING_REVIEW


@pytest.mark.parametrize("mode", ["500", "slow"])
def test_server_errors_and_timeouts_wait_then_verify(
    member_a, amazon_on, demo, sandbox, settings, mode
):
    settings.CHANNEL_HTTP_TIMEOUT = 0.5
    sandbox.set_fault("amazon", "getOrder", mode, times=2, seconds=1.5)
    claim = fresh(submit(member_a, amazon_on, demo["amazon"]["order_id"]))
    assert claim.status == S.RETRYING
    sandbox.clear_faults()
    Claim.objects.filter(pk=claim.pk).update(next_attempt_at=claim.created_at)
    retry_due_claims()
    assert fresh(claim).status == S.PENDING_REVIEW


def test_revoked_credentials_wait_and_mark_channel(member_a, amazon_on, demo, sandbox):
    sandbox.set_fault("amazon", "*", "revoked")
    claim = fresh(submit(member_a, amazon_on, demo["amazon"]["order_id"]))
    assert claim.status == S.RETRYING
    amazon_on.refresh_from_db()
    assert amazon_on.status == Status.NEEDS_ATTENTION
    assert amazon_on.last_error


def test_no_token_leaves_claim_waiting(member_a, amazon_on, demo, settings):
    settings.CLAIM_FETCH_LIMITS = {"amazon": (0.001, 1)}
    first = fresh(submit(member_a, amazon_on, demo["amazon"]["order_id"]))
    assert first.status == S.PENDING_REVIEW
    second = fresh(submit(member_a, amazon_on, "111-1111111-1111111"))
    assert second.status == S.SUBMITTED  # no token: not fetched, re-scheduled
    assert second.attempts == 0


def test_twenty_concurrent_submissions_make_one_claim(
    transactional_db, team_a, amazon_channel, demo, settings
):
    settings.CLAIM_FETCH_LIMITS = {"amazon": (0.001, 1)}  # keep the emulator out of the race
    services.rollout_set(channel=amazon_channel, stage="on")
    ann = member_enroll(team=team_a, email="ann@example.com", password="pw-member-1")
    zed = member_enroll(team=team_a, email="zed@example.com", password="pw-member-2")
    number = demo["amazon"]["order_id"]
    results = run_concurrently(20, lambda i: _submit((ann, zed)[i % 2], amazon_channel, number))
    made = [r for r in results if isinstance(r, Claim)]
    refused = [r for r in results if isinstance(r, AlreadyClaimed)]
    assert len(made) == 1 and len(refused) == 19, results
    assert Claim.objects.count() == 1


def test_verify_twice_in_parallel_fetches_once(
    transactional_db, team_a, amazon_channel, demo, sandbox
):
    services.rollout_set(channel=amazon_channel, stage="on")
    ann = member_enroll(team=team_a, email="ann@example.com", password="pw-member-1")
    claim = Claim.objects.create(
        team=team_a, member=ann, channel=amazon_channel, order_number=demo["amazon"]["order_id"]
    )
    sandbox.reset_calls()
    run_concurrently(8, lambda i: verify_claim(claim.pk))
    assert sandbox.call_count("amazon", "getOrder") == 1
    assert fresh(claim).status == S.PENDING_REVIEW


def test_bad_input_stores_nothing(member_a, amazon_on, tiktok_channel, demo, team_b):
    with pytest.raises(errors.InvalidInput):
        submit(member_a, amazon_on, "12345")
    with pytest.raises(errors.InvalidInput):
        submit(member_a, amazon_on, demo["amazon"]["order_id"], postal="<script>")
    with pytest.raises(ClaimsClosed):  # rollout off
        submit(member_a, tiktok_channel, demo["tiktok"]["order_id"])
    with pytest.raises(errors.InvalidInput):
        services.claim_submit(
            member=member_a, channel_public_id="ch_nope", order_number="1", postal_code=""
        )
    Member.objects.filter(pk=member_a.pk).update(status="blocked")
    member_a.refresh_from_db()
    with pytest.raises(errors.MemberBlocked):
        submit(member_a, amazon_on, demo["amazon"]["order_id"])
    assert not Claim.objects.exists() and not ClaimTransition.objects.exists()


def test_daily_limit(member_a, amazon_on, settings):
    settings.CLAIM_FETCH_LIMITS = {"amazon": (0.001, 1)}
    pacing.take(amazon_on)  # empty the bucket: nothing is fetched
    for n in range(services.DAILY_LIMIT):
        submit(member_a, amazon_on, f"111-1111111-{n:07d}")
    with pytest.raises(TooManyClaims):
        submit(member_a, amazon_on, "111-1111111-9999999")
    assert Claim.objects.count() == services.DAILY_LIMIT


def test_staff_stage_only_for_test_members(member_a, amazon_channel, demo, settings):
    settings.CLAIM_FETCH_LIMITS = {"amazon": (0.001, 1)}
    pacing.take(amazon_channel)
    call_command("set_rollout", team="alpha", channel=amazon_channel.public_id, stage="staff")
    assert Rollout.objects.get(channel=amazon_channel).stage == "staff"
    with pytest.raises(ClaimsClosed):
        submit(member_a, amazon_channel, demo["amazon"]["order_id"])
    assert list(services.claim_channels(member_a)) == []
    Member.objects.filter(pk=member_a.pk).update(is_test=True)
    member_a.refresh_from_db()
    assert list(services.claim_channels(member_a)) == [amazon_channel]
    assert submit(member_a, amazon_channel, demo["amazon"]["order_id"]).pk


def test_no_pii_in_database_or_logs(member_a, tiktok_on, amazon_on, demo, sandbox, bob, caplog):
    caplog.set_level(logging.DEBUG)
    tt_order = sandbox.tiktok.orders[demo["tiktok"]["order_id"]]
    postal = tt_order.recipient["postal_code"]
    az = fresh(submit(member_a, amazon_on, demo["amazon"]["order_id"]))
    tt = fresh(submit(member_a, tiktok_on, demo["tiktok"]["order_id"], postal=postal))
    assert tt.postal_match == "match"
    services.claim_approve(claim=az, reviewer=bob)
    services.claim_approve(claim=tt, reviewer=bob)
    az_order = sandbox.amazon.orders[demo["amazon"]["order_id"]]
    pii = _strings(tt_order.recipient) + [tt_order.buyer_email]
    pii += _strings(az_order.buyer) + _strings(az_order.recipient)
    pii = [p for p in pii if p and len(p) >= 4]
    assert pii
    dump, logs = database_dump(), caplog.text
    for value in pii:
        assert value not in dump, value
        assert value not in logs, value


def _strings(value) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []
