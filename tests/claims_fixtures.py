"""Fixtures shared by the claims tests (registered from conftest.py via pytest_plugins): fresh
rate-limit buckets, team A's earning rate, its marketplace channels with claims rolled out, and
``submit`` as the portal does it (verification runs when the submission commits)."""

import pytest

from claims import pacing, services
from loyalty.models import EarningPolicy

_capture = []


@pytest.fixture
def fresh_buckets(django_capture_on_commit_callbacks):
    """Empty rate-limit buckets, and on-commit callbacks that ``submit`` can run."""
    pacing.reset()
    _capture.append(django_capture_on_commit_callbacks)
    yield
    _capture.clear()
    pacing.reset()


@pytest.fixture
def rate_a(team_a):
    EarningPolicy.objects.update_or_create(team=team_a, currency="USD", defaults={"rate": "2"})


@pytest.fixture
def amazon_on(amazon_channel, rate_a):
    services.rollout_set(channel=amazon_channel, stage="on")
    return amazon_channel


@pytest.fixture
def tiktok_on(tiktok_channel, rate_a):
    services.rollout_set(channel=tiktok_channel, stage="on")
    return tiktok_channel


def submit(member, channel, number, postal=""):
    """Submit as the portal does; the verify task runs when the submission commits (needs the
    ``fresh_buckets`` fixture)."""
    with _capture[0](execute=True):
        return services.claim_submit(
            member=member,
            channel_public_id=channel.public_id,
            order_number=number,
            postal_code=postal,
        )
