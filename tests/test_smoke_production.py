"""The whole platform as `make run` starts it, as separate processes, on a database of its own:
the platform emulator, gunicorn, one Celery worker on all four queues and celery beat, with
DEBUG off, JSON logs, WhiteNoise and collected static files.

Then: a member claims an Amazon order in the portal over HTTP → the worker verifies it against
the emulator → a reviewer approves it → points on the ledger; and the emulator POSTs a signed
Shopify `orders/paid` webhook to gunicorn → the worker awards the buyer; /healthz is 200 with
beat's heartbeat fresh. Everything is stopped and the database dropped, whatever happens.

Needs only what `make test` has: PostgreSQL at DATABASE_URL and Redis at REDIS_URL (its keys
here carry a prefix of this run's own, so parallel runs do not meet)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/flash")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
VAULT_KEYS = "smoke:c21va2UtdGVzdC1vbmx5LWtleS1mb3ItZmxhc2gtMDE="
PASSWORD = "flash-demo-2026"  # the demo's (loyalty/management/commands/demo.py)
TIMEOUT_S = 60.0

# Run inside the stack once the database is migrated: the demo team, its channels connected to
# the emulator through Save & Verify, claims open — what `make demo` does — then what the test
# needs to know, as JSON on the last line.
SETUP = """
import json
from django.core.management import call_command
from channels_app.models import Channel
call_command("migrate", interactive=False, verbosity=0)
call_command("collectstatic", interactive=False, verbosity=0)
call_command("demo", verbosity=0)
call_command("demo_channels", sandbox="{sandbox}")
call_command("demo_claims")
print(json.dumps({{c.kind: c.public_id for c in Channel.objects.filter(team__slug="demo")}}))
"""
# What a reviewer's Approve does in the review queue (claims/admin.py calls the same service).
APPROVE = """
from django.contrib.auth import get_user_model
from claims.models import Claim
from claims.services import claim_approve
claim = Claim.objects.get(order_number="{order}", status="pending_review")
reviewer = get_user_model().objects.get(username="reviewer@demo.flash")
print(claim_approve(claim=claim, reviewer=reviewer).status)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def libpq(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql", path=f"/{dbname}"))


class Stack:
    """The processes of one smoke run, their logs, and the clean-up."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.run_id = secrets.token_hex(4)
        self.dbname = f"flash_smoke_{self.run_id}"
        self.prefix = f"smoke-{self.run_id}"
        self.web = f"http://127.0.0.1:{free_port()}"
        self.sandbox = f"http://127.0.0.1:{free_port()}"
        self.procs: dict[str, subprocess.Popen] = {}
        self.database_created = False
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")},
            "DJANGO_SETTINGS_MODULE": "flash.settings",
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": libpq(DATABASE_URL, self.dbname).replace("postgresql:", "postgres:"),
            "REDIS_URL": REDIS_URL,
            "CELERY_BROKER_URL": REDIS_URL,
            "CELERY_KEY_PREFIX": f"{self.prefix}:",
            "CACHE_KEY_PREFIX": self.prefix,
            "PACING_KEY_PREFIX": self.prefix,
            "FLASH_VAULT_KEYS": VAULT_KEYS,
            "PUBLIC_BASE_URL": self.web,
            # TLS ends at the load balancer, and there is none here.
            "SECURE_SSL_REDIRECT": "0",
            "SESSION_COOKIE_SECURE": "0",
            "CSRF_COOKIE_SECURE": "0",
            "STATIC_ROOT": str(tmp / "static"),
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
            "BEAT_HEARTBEAT_SECONDS": "2",
            "CONN_MAX_AGE": "60",
        }

    # --- processes ---

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "wb")  # closed in stop()
        proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: stopping it stops its children
        )
        proc.log = log
        self.procs[name] = proc
        return proc

    def manage(self, *args: str, timeout: float = 120) -> str:
        proc = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert proc.returncode == 0, f"manage.py {args[0]} failed:\n{proc.stdout}\n{proc.stderr}"
        return proc.stdout

    def logs(self) -> str:
        out = []
        for name in self.procs:
            lines = (self.tmp / f"{name}.log").read_text(errors="replace").splitlines()
            out.append(f"--- {name} (last 25 lines) ---\n" + "\n".join(lines[-25:]))
        return "\n".join(out)

    def alive(self) -> None:
        for name, proc in self.procs.items():
            assert proc.poll() is None, f"{name} exited with {proc.returncode}\n{self.logs()}"

    def wait_for(self, what: str, probe, timeout: float = TIMEOUT_S):
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(requests.RequestException, psycopg.Error):
                if value := probe():
                    return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}\n{self.logs()}")
            self.alive()
            time.sleep(0.25)

    # --- database ---

    def admin_sql(self, statement: str) -> None:
        with psycopg.connect(libpq(DATABASE_URL, "postgres"), autocommit=True) as conn:
            conn.execute(statement)

    def query(self, sql: str, *params):
        with psycopg.connect(libpq(DATABASE_URL, self.dbname), autocommit=True) as conn:
            return conn.execute(sql, params).fetchone()

    # --- clean-up ---

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
            proc.log.close()
        if self.database_created:
            self.admin_sql(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')
        r = redis.Redis.from_url(REDIS_URL)
        for key in r.scan_iter(f"{self.prefix}*"):  # the broker's, the cache's, the pacing's
            r.delete(key)


@pytest.fixture
def stack():
    with tempfile.TemporaryDirectory(prefix="flash-smoke-") as tmp:
        s = Stack(Path(tmp))
        try:
            yield s
        finally:
            s.stop()


def test_the_platform_runs_a_claim_and_a_shopify_order_end_to_end(stack):
    started = time.monotonic()
    stack.admin_sql(f'CREATE DATABASE "{stack.dbname}"')
    stack.database_created = True
    sandbox_port = stack.sandbox.rsplit(":", 1)[1]
    stack.start("sandbox", "manage.py", "run_sandbox", "--port", sandbox_port)
    demo = stack.wait_for(
        "the emulator", lambda: requests.get(f"{stack.sandbox}/_sandbox/demo", timeout=2).json()
    )
    out = stack.manage("shell", "--no-imports", "-c", SETUP.format(sandbox=stack.sandbox))
    channels = json.loads(out.strip().splitlines()[-1])
    assert {"shopify", "amazon", "tiktok"} <= set(channels)

    web_port = stack.web.rsplit(":", 1)[1]
    stack.start(
        "gunicorn", "-m", "gunicorn", "flash.wsgi:application",
        "--bind", f"127.0.0.1:{web_port}", "--workers", "2",
        "--logger-class", "flash.logs.GunicornLogger", "--access-logfile", "-",
    )  # fmt: skip
    stack.start(
        "worker", "-m", "celery", "-A", "flash", "--quiet", "worker",
        "-Q", "webhooks,verify,sync,clawback", "-c", "2", "-n", f"smoke-{stack.run_id}@%h",
        "--without-gossip", "--without-mingle",
    )  # fmt: skip
    stack.start(
        "beat", "-m", "celery", "-A", "flash", "--quiet", "beat",
        "--schedule", str(stack.tmp / "celerybeat-schedule"),
    )  # fmt: skip
    stack.wait_for(
        "gunicorn",
        lambda: requests.get(f"{stack.web}/healthz?only=database", timeout=2).status_code == 200,
    )

    # A member signs in to the portal and claims her Amazon order.
    member = requests.Session()
    portal = f"{stack.web}/p/demo"
    page = member.get(f"{portal}/login/", timeout=10)
    assert page.status_code == 200 and page.headers["X-Request-ID"]
    answer = member.post(
        f"{portal}/login/",
        data={
            "email": "maya@example.com",
            "password": PASSWORD,
            "csrfmiddlewaretoken": member.cookies["csrftoken"],
        },
        timeout=10,
    )
    assert answer.status_code == 200 and answer.url.rstrip("/") == portal, answer.text[:500]
    order = demo["amazon"]["order_id"]
    answer = member.post(
        f"{portal}/claims/",
        data={
            "channel": channels["amazon"],
            "order_number": order,
            "postal_code": "",
            "csrfmiddlewaretoken": member.cookies["csrftoken"],
        },
        timeout=10,
    )
    assert answer.status_code == 200 and order in answer.text, answer.text[:800]

    # Meanwhile Shopify reports a paid order of another member's (signed by the emulator).
    shop = demo["shopify"]["shop_domain"]
    gid = requests.post(
        f"{stack.sandbox}/_sandbox/orders",
        json={"platform": "shopify", "owner": shop, "email": "Sam@Example.com", "total": "42.00"},
        timeout=10,
    ).json()["order_id"]
    sent = requests.post(
        f"{stack.sandbox}/_sandbox/shopify/webhooks/send",
        json={"url": f"{stack.web}/webhooks/shopify", "topic": "orders/paid", "order_id": gid},
        timeout=15,
    ).json()
    assert sent["status"] == 200, sent

    # The worker checks the claim with Amazon (the emulator); a person approves it.
    def verified():
        row = stack.query("SELECT status FROM claims_claim WHERE order_number = %s", order)
        return row[0] if row and row[0] in ("pending_review", "approved", "awarded") else None

    status = stack.wait_for("the claim's verification", verified)
    if status == "pending_review":  # (an auto-approval policy may have approved it already)
        assert (
            stack.manage("shell", "--no-imports", "-c", APPROVE.format(order=order)).strip()
            == "awarded"
        )

    def points(key: str):
        row = stack.query(
            "SELECT e.points, m.email FROM loyalty_ledgerentry e"
            " JOIN loyalty_member m ON m.id = e.member_id WHERE e.idempotency_key = %s",
            key,
        )
        return row if row and row[0] > 0 else None

    claim_points, claimant = stack.wait_for(
        "the claim's points", lambda: points(f"amazon-order:{order}")
    )
    assert claimant == "maya@example.com" and claim_points > 0
    shop_points, buyer = stack.wait_for("the Shopify award", lambda: points(f"shopify-order:{gid}"))
    assert buyer == "sam@example.com" and shop_points >= 42  # 42.00 × rate 1 × her tier

    # Healthy, with beat's heartbeat fresh (it beats every 2 s here).
    health = stack.wait_for(
        "a fresh heartbeat",
        lambda: (
            (r := requests.get(f"{stack.web}/healthz", timeout=10)).status_code == 200 and r.json()
        ),
    )
    assert health["checks"]["beat"]["status"] == "ok" and health["checks"]["beat"]["age_s"] < 10
    assert {c["status"] for c in health["checks"].values()} == {"ok"}

    # WhiteNoise serves the hashed, compressed static files collectstatic made.
    css = re.search(r'href="(/static/[^"]+\.css)"', page.text).group(1)
    assert re.search(r"\.[0-9a-f]{12}\.css$", css), css
    static = requests.get(f"{stack.web}{css}", headers={"Accept-Encoding": "gzip"}, timeout=10)
    assert static.status_code == 200 and "immutable" in static.headers["Cache-Control"]

    # Every process is still up; the web's log lines are JSON carrying request ids.
    stack.alive()
    access = [
        json.loads(line)
        for line in (stack.tmp / "gunicorn.log").read_text().splitlines()
        if '"gunicorn.access"' in line
    ]
    assert any(a["message"].startswith("POST /webhooks/shopify 200") for a in access)
    assert all(a["request_id"] for a in access)
    worker_log = (stack.tmp / "worker.log").read_text()
    assert "maya@example.com" not in worker_log and "sam@example.com" not in worker_log
    assert time.monotonic() - started < 3 * TIMEOUT_S
