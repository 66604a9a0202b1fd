"""Console → Claims: the rollout gate per channel, and claims waiting on a broken channel."""

import pytest
from django.test import Client

from channels_app import services as channel_services
from channels_app.models import Channel
from claims import services
from claims.models import Rollout

pytestmark = pytest.mark.django_db
PAGE = "/console/claims/"


@pytest.fixture
def amazon_on(amazon_channel):
    services.rollout_set(channel=amazon_channel, stage="on")
    return amazon_channel


@pytest.fixture
def submit(django_capture_on_commit_callbacks):
    """Submit as the portal does; verification runs when the submission commits."""

    def run(member, channel, number):
        with django_capture_on_commit_callbacks(execute=True):
            return services.claim_submit(
                member=member, channel_public_id=channel.public_id, order_number=number
            )

    return run


def signed_in(user):
    client = Client()
    client.force_login(user)
    return client


def test_admin_rolls_claims_out_per_channel(alice, amazon_channel):
    client = signed_in(alice)
    assert amazon_channel.name in client.get(PAGE).content.decode()
    resp = client.post(
        f"{PAGE}{amazon_channel.public_id}/rollout/", {"stage": "staff"}, follow=True
    )
    assert "staff test members only" in resp.content.decode()
    assert Rollout.objects.get(channel=amazon_channel).stage == "staff"
    resp = client.post(
        f"{PAGE}{amazon_channel.public_id}/rollout/", {"stage": "sideways"}, follow=True
    )
    assert "off, staff or on" in resp.content.decode()


def test_reviewer_sees_but_cannot_change_and_other_teams_get_404(bob, charlie, amazon_channel):
    assert signed_in(bob).get(PAGE).status_code == 200
    assert (
        signed_in(bob)
        .post(f"{PAGE}{amazon_channel.public_id}/rollout/", {"stage": "on"})
        .status_code
        == 403
    )
    assert amazon_channel.public_id not in signed_in(charlie).get(PAGE).content.decode()
    assert (
        signed_in(charlie)
        .post(f"{PAGE}{amazon_channel.public_id}/rollout/", {"stage": "on"})
        .status_code
        == 404
    )
    assert not Rollout.objects.exists()


def test_claims_waiting_on_a_channel_that_needs_attention_are_shown(
    alice,
    member_a,
    amazon_on,
    demo,
    submit,
):
    submit(member_a, amazon_on, demo["amazon"]["order_id"])
    channel_services.channel_mark_failed(
        channel=amazon_on, message="Token revoked by Amazon.", permanent=True
    )
    body = signed_in(alice).get(PAGE).content.decode()
    assert "needs attention" in body and "Token revoked by Amazon." in body
    assert "1 waiting for review" in body


def test_disconnecting_a_channel_with_claims_keeps_their_history(member_a, amazon_on, demo, submit):
    claim = submit(member_a, amazon_on, demo["amazon"]["order_id"])
    channel_services.channel_disconnect(channel=amazon_on)
    kept = Channel.objects.get(pk=amazon_on.pk)
    assert kept.status == "disconnected" and kept.sealed_secrets == {}
    assert claim.channel_id == kept.pk
    assert list(services.claim_channels(member_a)) == []


def test_claims_wait_without_calling_the_platform_while_the_channel_needs_attention(
    member_a, amazon_on, demo, sandbox, submit
):
    channel_services.channel_mark_failed(channel=amazon_on, message="Revoked.", permanent=True)
    sandbox.reset_calls()
    claim = submit(member_a, amazon_on, demo["amazon"]["order_id"])
    claim.refresh_from_db()
    assert claim.status == "submitted"  # waiting, not failed, not lost
    assert sandbox.call_count("amazon", "getOrder") == 0
