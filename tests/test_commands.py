"""The management commands a newcomer and an operator use."""

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from loyalty.models import EarningPolicy, LedgerEntry, Member, Team, TeamMembership
from loyalty.selectors import ledger_mismatches

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent


def run(*args):
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().strip()


def test_create_team_staff_and_member():
    assert (
        run(
            "create_team",
            "--name",
            "Gamma",
            "--slug",
            "gamma",
            "--plan",
            "growth",
            "--currency",
            "eur",
            "--rate",
            "2.5",
            "--daily-cap",
            "300",
        )
        == "gamma"
    )
    team = Team.objects.get(slug="gamma")
    assert (team.plan, team.currency, team.daily_cap) == ("growth", "EUR", 300)
    assert str(EarningPolicy.objects.get(team=team).rate) == "2.5000"
    run(
        "create_staff",
        "--team",
        "gamma",
        "--email",
        "Rita@Gamma.test",
        "--password",
        "pw12345678",
        "--role",
        "reviewer",
    )
    assert TeamMembership.objects.get(team=team).user.username == "rita@gamma.test"
    member_id = run("enroll_member", "--team", "gamma", "--email", "x@example.com")
    assert member_id.startswith("mem_") and Member.objects.get(public_id=member_id).team == team


@pytest.mark.parametrize(
    "args, message",
    [
        (["create_team", "--name", "A", "--slug", "bad slug"], "slug"),
        (["create_team", "--name", "A", "--slug", "a", "--currency", "EURO"], "three-letter"),
        (["create_team", "--name", "A", "--slug", "a", "--rate", "-1"], "zero or more"),
        (["enroll_member", "--team", "missing", "--email", "x@example.com"], "No team"),
    ],
)
def test_bad_input_is_a_clear_error(args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert not Team.objects.exists()


def test_demo_seeds_once_with_a_clean_ledger():
    run("demo")
    run("demo")
    team = Team.objects.get(slug="demo")
    assert team.members.count() == 5 and team.stores.count() == 3
    assert LedgerEntry.objects.filter(team=team).count() > 20
    assert ledger_mismatches() == []


def test_check_deploy_is_clean_with_production_values():
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "DJANGO_SETTINGS_MODULE")}
    env.update(
        SECRET_KEY="a-long-random-production-secret-" + "x9Q2!" * 10,
        DEBUG="0",
        ALLOWED_HOSTS="loyalty.example.com",
        DJANGO_SETTINGS_MODULE="flash.settings",
    )
    proc = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no issues" in proc.stdout


def test_start_up_refuses_production_without_a_secret_key():
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY")}
    env.update(DJANGO_SETTINGS_MODULE="flash.settings", DEBUG="0")
    proc = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode != 0 and "SECRET_KEY must be set" in proc.stderr
