"""Personas (after Healthchecks' hc/test.py): Alice admins team A, Bob reviews for team A,
Charlie admins team B and must see nothing of A's. And no test may reach the internet."""

import socket

import pytest

from loyalty import services

from .factories import MemberFactory, MembershipFactory, RewardFactory, TeamFactory, TierFactory

pytest_plugins = ["tests.sandbox_fixtures", "tests.browser_fixtures", "tests.claims_fixtures"]

_real_connect = socket.socket.connect


def _guarded_connect(sock, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and not (
        host.startswith("127.") or host in ("localhost", "::1") or sock.family == socket.AF_UNIX
    ):
        raise RuntimeError(f"Tests must not reach the network (tried {host})")
    return _real_connect(sock, address)


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)


@pytest.fixture
def team_a(db):
    team = TeamFactory(name="Alpha Coffee", slug="alpha")
    TierFactory(team=team, name="Member", threshold=0, multiplier="1")
    TierFactory(team=team, name="Gold", threshold=1000, multiplier="1.5")
    return team


@pytest.fixture
def team_b(db):
    return TeamFactory(name="Beta Books", slug="beta")


@pytest.fixture
def alice(team_a):
    return MembershipFactory(team=team_a, role="org_owner", user__username="alice@alpha.test").user


@pytest.fixture
def bob(team_a):
    return MembershipFactory(team=team_a, role="reviewer", user__username="bob@alpha.test").user


@pytest.fixture
def charlie(team_b):
    return MembershipFactory(team=team_b, role="org_owner", user__username="charlie@beta.test").user


@pytest.fixture
def member_a(team_a):
    return services.member_enroll(
        team=team_a, email="ann@example.com", password="pw-member-1", name="Ann"
    )


@pytest.fixture
def member_b(team_b):
    return services.member_enroll(
        team=team_b, email="ben@example.com", password="pw-member-1", name="Ben"
    )


@pytest.fixture
def reward_a(team_a):
    return RewardFactory(team=team_a, name="Free coffee", points_cost=100)


__all__ = ["MemberFactory"]
