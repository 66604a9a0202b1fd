"""End to end with real parts: the emulator sends a signed Shopify webhook over HTTP to the live
server, a real Celery worker (Redis broker, a separate process) awards the points, and the
worker delivers the brand's outbound webhook to a local receiver."""

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis
from django.db import connection

from channels_app.models import WebhookDelivery
from events import services as event_services
from events import tasks as event_tasks
from flash.celery import app as celery_app
from loyalty import services
from loyalty.models import Member

from .sandbox_fixtures import make_channel, shopify_config

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parent.parent
REDIS = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0").rsplit("/", 1)[0]
BROKER = f"{REDIS}/7"


def wait_for(predicate, timeout=30.0, what="the worker"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def receiver():
    """The brand's own endpoint for outbound webhooks."""
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers), json.loads(body)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hooks", received
    server.shutdown()
    server.server_close()


def _forget_broker_connections():
    # Earlier tests may have built the producer pool for the default broker: drop (not close)
    # our references, so the next publish builds one for the broker configured now.
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def worker(settings):
    """A real worker process on a real broker; this process enqueues instead of running."""
    # Keys of this run's own: two test runs sharing one Redis must not take each other's tasks.
    prefix = f"e2e-{uuid.uuid4().hex[:10]}:"
    overrides = {
        "task_always_eager": False,
        "broker_url": BROKER,
        "result_backend": None,
        "broker_transport_options": {"global_keyprefix": prefix},
    }
    celery_app.conf.update(overrides)
    _forget_broker_connections()
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.EVENTS_REQUIRE_HTTPS = False  # the receiver is a plain-HTTP server on loopback
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "flash.test_settings",
        "CELERY_BROKER_URL": BROKER,
        "CELERY_KEY_PREFIX": prefix,
        "DATABASE_URL": "postgres://{USER}@{HOST}:{PORT}/{NAME}".format(**connection.settings_dict),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "flash",
            "worker",
            "-P",
            "solo",
            "-l",
            "warning",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        # Forget the overrides rather than pinning old values: later tests change the Django
        # settings Celery reads through, and a pinned value would hide their changes.
        for key in overrides:
            celery_app.conf.changes.pop(key, None)
        _forget_broker_connections()
        broker = redis.Redis.from_url(BROKER)
        for key in broker.scan_iter(f"{prefix}*"):
            broker.delete(key)


def test_webhook_to_award_to_outbound_delivery(
    live_server, team_a, sandbox_server, sandbox, demo, receiver, worker
):
    url, received = receiver
    creds = demo["shopify"]
    make_channel(
        team_a,
        "shopify",
        config=shopify_config(sandbox_server, creds),
        secrets={"access_token": creds["access_token"], "client_secret": creds["client_secret"]},
    )
    member = services.member_enroll(team=team_a, email="e2e.buyer@example.com")
    endpoint, _secret = event_services.endpoint_create(
        team=team_a, url=url, event_types=["purchase.first"]
    )
    order = sandbox.shopify.add_order(
        creds["shop_domain"], email="e2e.buyer@example.com", total="58.00"
    )

    status, _, _ = sandbox.shopify.send_webhook(
        f"{live_server.url}/webhooks/shopify", topic="orders/paid", order_id=order.id
    )
    assert status == 200
    wait_for(lambda: Member.objects.get(pk=member.pk).balance == 58, what="the award")
    assert WebhookDelivery.objects.get().status == "processed"

    event_tasks.dispatch_outbox.delay()  # what beat does every few seconds
    wait_for(lambda: received, what="the outbound webhook")
    headers, body = received[0]
    assert body["type"] == "purchase.first" and body["data"]["points"] == 58
    assert headers.get("X-Flash-Signature", "").startswith("sha256=")
    assert worker.poll() is None, worker.stdout.read().decode()
