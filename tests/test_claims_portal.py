"""The member's Claims page: submit, statuses in plain words, bad input, rollout stages."""

import pytest

from channels_app.models import Channel
from claims import pacing, services
from claims.models import Claim
from loyalty.models import EarningPolicy, Member

from .sandbox_fixtures import make_channel
from .test_portal import sign_in

PAGE = "/p/alpha/claims/"


@pytest.fixture(autouse=True)
def _fresh_buckets():
    pacing.reset()
    yield
    pacing.reset()


@pytest.fixture
def signed_in(client, member_a):
    EarningPolicy.objects.update_or_create(
        team=member_a.team, currency="USD", defaults={"rate": "2"}
    )
    sign_in(client)
    return client


def post(client, channel, number, postal=""):
    ch = channel.public_id if isinstance(channel, Channel) else channel
    return client.post(PAGE, {"channel": ch, "order_number": number, "postal_code": postal})


def test_submit_via_form_then_statuses_in_plain_words(
    signed_in, amazon_channel, demo, django_capture_on_commit_callbacks
):
    services.rollout_set(channel=amazon_channel, stage="on")
    page = signed_in.get(PAGE)
    assert page.status_code == 200
    assert amazon_channel.public_id in page.content.decode()
    assert 'aria-current="page">Claims' in page.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        r = post(signed_in, amazon_channel, demo["amazon"]["order_id"], "12345")
    assert r.status_code == 302 and r["Location"] == PAGE
    html = signed_in.get(PAGE).content.decode()
    assert demo["amazon"]["order_id"] in html
    assert "waiting for review" in html
    claim = Claim.objects.get()
    assert claim.postal_match in ("unavailable", "match", "no_match")


@pytest.mark.parametrize(
    "status,words",
    [
        ("submitted", "checking with Amazon"),
        ("retrying", "Amazon is busy — we will try again shortly"),
        ("pending_review", "waiting for review"),
    ],
)
def test_status_words(signed_in, member_a, amazon_channel, status, words):
    Claim.objects.create(
        team=member_a.team,
        member=member_a,
        channel=amazon_channel,
        order_number="111-1111111-1111111",
        status=status,
    )
    assert words in signed_in.get(PAGE).content.decode()


def test_awarded_and_ineligible_words(signed_in, member_a, amazon_channel):
    for n, (status, extra) in enumerate(
        [
            ("awarded", {"points_awarded": 240}),
            ("ineligible", {"status_reason": "order was cancelled"}),
        ]
    ):
        Claim.objects.create(
            team=member_a.team,
            member=member_a,
            channel=amazon_channel,
            order_number=f"111-1111111-111111{n}",
            status=status,
            **extra,
        )
    html = signed_in.get(PAGE).content.decode()
    assert "approved · +240 points" in html
    assert "rejected: order was cancelled" in html


def test_bad_input_messages_store_nothing(signed_in, member_a, amazon_channel, team_b):
    services.rollout_set(channel=amazon_channel, stage="on")
    r = post(signed_in, amazon_channel, "not-a-number")
    assert r.status_code == 400
    assert "not a valid Amazon order number" in r.content.decode()
    r = post(signed_in, "ch_unknown", "111-1111111-1111111")
    assert "Pick one of the marketplaces" in r.content.decode()
    theirs = make_channel(team_b, "amazon", config={}, secrets={})
    services.rollout_set(channel=theirs, stage="on")
    r = post(signed_in, theirs, "111-1111111-1111111")
    assert r.status_code == 400 and "Pick one of the marketplaces" in r.content.decode()
    assert not Claim.objects.exists()


def test_blocked_member_is_refused(signed_in, member_a, amazon_channel):
    services.rollout_set(channel=amazon_channel, stage="on")
    Member.objects.filter(pk=member_a.pk).update(status="blocked")
    r = post(signed_in, amazon_channel, "111-1111111-1111111")
    assert r.status_code in (302, 400, 403)
    assert not Claim.objects.exists()


def test_already_claimed_by_someone_else(signed_in, member_a, amazon_channel, settings):
    settings.CLAIM_FETCH_LIMITS = {"amazon": (0.001, 1)}
    services.rollout_set(channel=amazon_channel, stage="on")
    other = Member.objects.create(team=member_a.team, email="zed@example.com")
    Claim.objects.create(
        team=member_a.team, member=other, channel=amazon_channel, order_number="111-1111111-1111111"
    )
    r = post(signed_in, amazon_channel, "111-1111111-1111111")
    html = r.content.decode()
    assert r.status_code == 400 and "already been claimed" in html
    assert "zed@example.com" not in html


@pytest.mark.parametrize(
    "stage,is_test,allowed",
    [
        ("off", True, False),
        ("staff", False, False),
        ("staff", True, True),
        ("on", False, True),
    ],
)
def test_rollout_stages(signed_in, member_a, amazon_channel, settings, stage, is_test, allowed):
    settings.CLAIM_FETCH_LIMITS = {"amazon": (0.001, 1)}
    pacing.take(amazon_channel)  # no fetch: only the gate is under test
    services.rollout_set(channel=amazon_channel, stage=stage)
    Member.objects.filter(pk=member_a.pk).update(is_test=is_test)
    page = signed_in.get(PAGE).content.decode()
    assert (amazon_channel.public_id in page) is allowed
    r = post(signed_in, amazon_channel, "111-1111111-1111111")
    assert Claim.objects.exists() is allowed
    if not allowed:
        assert "not open yet" in r.content.decode()
