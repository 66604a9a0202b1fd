"""The outbox dispatcher, signed webhook deliveries and the e-mail automations.

Deliveries go to a real HTTP receiver on 127.0.0.1 (a ThreadingHTTPServer that records what it
gets and answers what it is told); races run in real threads on PostgreSQL."""

import hashlib
import hmac
import io
import json
import logging
import smtplib
import threading
import time
from collections import deque
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from channels_app.vault import VaultError, open_sealed
from events import automations, dispatch, services, signing, tasks
from events.models import AutomationKind, DeliveryState, EmailSent, EventDelivery, WebhookEndpoint
from loyalty import services as loyalty
from loyalty.models import OutboxEvent

from .factories import RewardFactory
from .test_concurrency import run_concurrently

pytestmark = pytest.mark.django_db


# --- the receiver -----------------------------------------------------------------------------


class Receiver:
    """What a brand's server got: every request, in order. Answers 200 unless told otherwise."""

    def __init__(self):
        self.requests: list[dict] = []
        self.script: deque[int] = deque()
        self.status = 200
        self.delay = 0.0
        self.lock = threading.Lock()
        self.url = ""

    def answer(self, *statuses: int) -> None:
        """Answer these statuses to the next requests, then the default again."""
        self.script.extend(statuses)

    def next_status(self) -> int:
        with self.lock:
            return self.script.popleft() if self.script else self.status

    def bodies(self, path: str | None = None) -> list[dict]:
        return [json.loads(r["body"]) for r in self.requests if path is None or r["path"] == path]


@pytest.fixture
def receiver():
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if rec.delay:
                time.sleep(rec.delay)
            status = rec.next_status()
            with rec.lock:
                rec.requests.append(
                    {"path": self.path, "headers": dict(self.headers.items()), "body": body}
                )
            answer = b"ok" if status < 300 else b"boom: something broke"
            self.send_response(status)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):  # keep the test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    rec.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield rec
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _plain_http_for_the_local_receiver(settings):
    settings.EVENTS_REQUIRE_HTTPS = False


# --- helpers ----------------------------------------------------------------------------------


def add_endpoint(team, url, types=()):
    endpoint, secret = services.endpoint_create(team=team, url=url, event_types=list(types))
    endpoint.secret = secret
    return endpoint


def emit(team, event_type, **payload):
    """What loyalty.services._emit writes."""
    return OutboxEvent.objects.create(team=team, event_type=event_type, payload=payload)


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    """Call fn(**kw) and then run what it queued for after commit (the deliver / e-mail tasks,
    eager in tests), as a real commit would."""

    def _run(fn=dispatch.outbox_dispatch, **kw):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(**kw)

    return _run


def make_due(delivery_or_qs=None):
    qs = EventDelivery.objects.filter(state=DeliveryState.PENDING)
    if isinstance(delivery_or_qs, EventDelivery):
        qs = qs.filter(pk=delivery_or_qs.pk)
    qs.update(next_attempt_at=timezone.now() - timedelta(seconds=1))


# --- signed delivery --------------------------------------------------------------------------


def test_an_event_is_posted_signed_and_the_signature_verifies(run, receiver, team_a):
    ep = add_endpoint(team_a, f"{receiver.url}/hook")
    member = loyalty.member_enroll(team=team_a, email="ann@example.com", name="Ann")
    event = OutboxEvent.objects.get(event_type="member.enrolled")

    assert run() == 1

    [req] = receiver.requests
    delivery = EventDelivery.objects.get()
    h = req["headers"]
    assert req["path"] == "/hook"
    assert h["Content-Type"] == "application/json"
    assert h["X-Flash-Event"] == "member.enrolled"
    assert h["X-Flash-Delivery"] == str(delivery.pk)
    body = json.loads(req["body"])
    assert body["id"] == event.pk and body["type"] == "member.enrolled"
    assert body["team"] == "alpha" and body["data"] == {"memberId": member.public_id}
    assert body["createdAt"].endswith("Z")

    # The documented check: HMAC-SHA256(secret, "<timestamp>.<raw body>"), hex, "sha256=" prefix.
    ts = h["X-Flash-Timestamp"]
    assert abs(int(ts) - time.time()) < 60
    expected = hmac.new(ep.secret.encode(), f"{ts}.".encode() + req["body"], hashlib.sha256)
    assert h["X-Flash-Signature"] == f"sha256={expected.hexdigest()}"
    assert signing.verify(ep.secret, timestamp=ts, body=req["body"], header=h["X-Flash-Signature"])
    # Not with another secret, another body, or a stale timestamp.
    sig = h["X-Flash-Signature"]
    assert not signing.verify("whsec_other", timestamp=ts, body=req["body"], header=sig)
    assert not signing.verify(ep.secret, timestamp=ts, body=req["body"] + b" ", header=sig)
    assert not signing.verify(
        ep.secret, timestamp=ts, body=req["body"], header=sig, now=int(ts) + 301
    )

    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.SUCCEEDED and delivery.attempts == 1
    assert delivery.last_status == 200 and delivery.last_error == ""
    assert delivery.delivered_at is not None and delivery.next_attempt_at is None
    event.refresh_from_db()
    assert event.dispatched_at is not None
    assert run() == 0 and len(receiver.requests) == 1  # nothing left to dispatch


def test_events_go_out_in_the_order_they_happened(run, receiver, team_a):
    add_endpoint(team_a, receiver.url)
    events = [emit(team_a, "points.awarded", memberId="mem_x", points=i) for i in range(7)]
    assert run(batch_size=3) == 7  # three batches
    assert [b["id"] for b in receiver.bodies()] == [e.pk for e in events]
    assert not OutboxEvent.objects.filter(dispatched_at__isnull=True).exists()


def test_a_500_is_retried_after_the_back_off_and_then_succeeds(run, receiver, team_a):
    receiver.answer(500)
    add_endpoint(team_a, receiver.url)
    emit(team_a, "member.enrolled", memberId="mem_1")
    before = timezone.now()
    run()

    d = EventDelivery.objects.get()
    assert (d.state, d.attempts, d.last_status) == (DeliveryState.PENDING, 1, 500)
    assert d.last_error == "HTTP 500: boom: something broke"
    wait = d.next_attempt_at - before
    assert timedelta(seconds=29) < wait < timedelta(seconds=40)

    # Not due yet: the periodic retry leaves it alone (no worker sleeps waiting for it).
    assert run(tasks.retry_due_deliveries) == 0
    assert len(receiver.requests) == 1

    make_due(d)
    assert run(tasks.retry_due_deliveries) == 1
    d.refresh_from_db()
    assert (d.state, d.attempts, d.last_status, d.last_error) == ("succeeded", 2, 200, "")
    first, second = receiver.requests
    assert first["body"] == second["body"]  # the same event, re-signed
    assert first["headers"]["X-Flash-Delivery"] == second["headers"]["X-Flash-Delivery"]


def test_gives_up_after_six_attempts_on_the_documented_schedule(run, receiver, team_a):
    receiver.status = 503
    add_endpoint(team_a, receiver.url)
    emit(team_a, "member.enrolled", memberId="mem_1")
    run()
    waits = []
    d = EventDelivery.objects.get()
    while d.state == DeliveryState.PENDING:
        waits.append(round((d.next_attempt_at - timezone.now()).total_seconds()))
        make_due(d)
        run(tasks.retry_due_deliveries)
        d.refresh_from_db()
    assert waits == [30, 120, 600, 3600, 21600]
    assert (d.state, d.attempts, d.last_status, d.next_attempt_at) == ("failed", 6, 503, None)
    assert len(receiver.requests) == dispatch.MAX_ATTEMPTS == 6
    # Failed is final: nothing more is attempted unless someone replays it.
    assert run(tasks.retry_due_deliveries) == 0
    assert run(tasks.deliver, delivery_id=d.pk) == "skipped"
    assert len(receiver.requests) == 6


def test_replay_sends_a_failed_delivery_again_with_a_fresh_schedule(run, receiver, team_a):
    receiver.status = 500
    add_endpoint(team_a, receiver.url)
    emit(team_a, "member.enrolled", memberId="mem_1")
    run()
    d = EventDelivery.objects.get()
    EventDelivery.objects.filter(pk=d.pk).update(state="failed", attempts=6, next_attempt_at=None)

    receiver.status = 200
    run(services.delivery_replay, delivery=d)
    d.refresh_from_db()
    assert (d.state, d.attempts, d.last_status) == ("succeeded", 1, 200)
    assert len(receiver.requests) == 2

    # A delivered event can be replayed too (the receiver lost it): sent once more.
    run(services.delivery_replay, delivery=d)
    d.refresh_from_db()
    assert (d.state, d.attempts) == ("succeeded", 1)
    assert len(receiver.requests) == 3
    assert len({r["body"] for r in receiver.requests}) == 1


def test_an_attempt_replaced_by_a_replay_does_not_overwrite_it(run, receiver, team_a):
    add_endpoint(team_a, receiver.url)
    emit(team_a, "member.enrolled", memberId="mem_1")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tasks.deliver, "delay", lambda pk: None)  # fan out, send nothing yet
        run()
    d = EventDelivery.objects.get()
    real_post = dispatch._post

    def post_then_replay(delivery, endpoint, event):
        outcome = real_post(delivery, endpoint, event)
        # Someone presses Replay while this attempt is still in flight.
        EventDelivery.objects.filter(pk=delivery.pk).update(
            attempts=0, next_attempt_at=timezone.now()
        )
        return outcome

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dispatch, "_post", post_then_replay)
        dispatch.delivery_attempt(delivery_id=d.pk)
    d.refresh_from_db()
    assert (d.state, d.attempts) == ("pending", 0)  # left for the replay's own attempt
    assert dispatch.delivery_attempt(delivery_id=d.pk) == "succeeded"


def test_connection_refused_and_timeouts_are_retried_with_a_clear_error(
    run, receiver, team_a, monkeypatch
):
    with socket_bound_but_closed() as dead_url:
        add_endpoint(team_a, dead_url)
        emit(team_a, "member.enrolled", memberId="mem_1")
        run()
    d = EventDelivery.objects.get()
    assert (d.state, d.attempts, d.last_status) == ("pending", 1, None)
    assert d.last_error == "Could not connect to the endpoint."

    monkeypatch.setattr(dispatch, "TIMEOUT_SECONDS", 0.2)
    receiver.delay = 1.0
    add_endpoint(team_a, f"{receiver.url}/slow")
    emit(team_a, "member.enrolled", memberId="mem_2")
    run()
    slow = EventDelivery.objects.get(endpoint__url__endswith="/slow")
    assert (slow.state, slow.attempts, slow.last_status) == ("pending", 1, None)
    assert slow.last_error == "Timed out after 0.2 s."


class socket_bound_but_closed:
    """A 127.0.0.1 port nobody listens on."""

    def __enter__(self):
        import socket

        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        return f"http://127.0.0.1:{self.port}/gone"

    def __exit__(self, *exc):
        return False


def test_redirects_are_not_followed(run, receiver, team_a):
    receiver.answer(302)
    add_endpoint(team_a, receiver.url)
    emit(team_a, "member.enrolled", memberId="mem_1")
    run()
    d = EventDelivery.objects.get()
    assert (d.state, d.last_status) == ("pending", 302)
    assert len(receiver.requests) == 1


# --- who gets what ----------------------------------------------------------------------------


def test_event_type_filters_are_respected(run, receiver, team_a):
    only = add_endpoint(team_a, f"{receiver.url}/only", ["purchase.first", "reward.redeemed"])
    every = add_endpoint(team_a, f"{receiver.url}/all")
    assert only.event_types == ["purchase.first", "reward.redeemed"] and every.event_types == []
    emit(team_a, "member.enrolled", memberId="mem_1")
    emit(team_a, "purchase.first", memberId="mem_1", points=10)
    emit(team_a, "some.future_type", memberId="mem_1")
    run()
    assert [b["type"] for b in receiver.bodies("/only")] == ["purchase.first"]
    assert [b["type"] for b in receiver.bodies("/all")] == [
        "member.enrolled",
        "purchase.first",
        "some.future_type",
    ]
    assert EventDelivery.objects.filter(endpoint=only).count() == 1


def test_a_disabled_endpoint_gets_nothing_until_enabled(run, receiver, team_a):
    ep = add_endpoint(team_a, receiver.url)
    receiver.answer(500)
    emit(team_a, "member.enrolled", memberId="mem_1")
    run()
    services.endpoint_set_active(endpoint=ep, active=False)
    emit(team_a, "member.enrolled", memberId="mem_2")
    run()
    make_due()
    assert run(tasks.retry_due_deliveries) == 0  # the pending retry waits while paused
    assert len(receiver.requests) == 1
    assert EventDelivery.objects.count() == 1  # no delivery made while it was disabled

    services.endpoint_set_active(endpoint=ep, active=True)
    assert run(tasks.retry_due_deliveries) == 1
    assert EventDelivery.objects.get().state == "succeeded"


def test_nothing_is_delivered_for_another_teams_events(run, receiver, team_a, team_b):
    add_endpoint(team_a, f"{receiver.url}/a")
    add_endpoint(team_b, f"{receiver.url}/b")
    ben = loyalty.member_enroll(team=team_b, email="ben@example.com")
    run()
    assert receiver.bodies("/a") == []
    [body] = receiver.bodies("/b")
    assert body["team"] == "beta" and body["data"]["memberId"] == ben.public_id
    assert not EventDelivery.objects.filter(endpoint__team=team_a).exists()


def test_an_event_seen_twice_is_not_delivered_twice(run, receiver, team_a):
    add_endpoint(team_a, receiver.url)
    emit(team_a, "member.enrolled", memberId="mem_1")
    run()
    OutboxEvent.objects.update(dispatched_at=None)  # say a restore brought it back
    assert run() == 1
    assert EventDelivery.objects.count() == 1 and len(receiver.requests) == 1


def test_tasks_carry_ids_only(run, team_a, member_a, monkeypatch):
    add_endpoint(team_a, "http://127.0.0.1:9/never")
    automations_on(team_a, "welcome")
    queued = []
    monkeypatch.setattr(tasks.deliver, "delay", lambda *a, **kw: queued.append((a, kw)))
    monkeypatch.setattr(
        tasks.send_automation_email, "delay", lambda *a, **kw: queued.append((a, kw))
    )
    run()
    event = OutboxEvent.objects.get(event_type="member.enrolled")
    delivery = EventDelivery.objects.get()
    assert sorted(queued, key=str) == sorted(
        [((delivery.pk,), {}), (("welcome", event.pk), {})], key=str
    )


# --- the secret -------------------------------------------------------------------------------


def test_the_secret_is_sealed_and_never_logged_or_dumped(run, receiver, team_a, caplog):
    caplog.set_level(logging.DEBUG)
    receiver.answer(500)
    ep = add_endpoint(team_a, receiver.url)
    assert ep.secret.startswith("whsec_") and len(ep.secret) > 40
    assert ep.secret_hint == ep.secret[-4:]
    emit(team_a, "member.enrolled", memberId="mem_1")
    run()
    make_due()
    run(tasks.retry_due_deliveries)

    stored = WebhookEndpoint.objects.get()
    assert stored.sealed_secret.startswith("v1:") and ep.secret not in stored.sealed_secret
    assert open_sealed(stored.sealed_secret, context=f"{ep.public_id}:secret") == ep.secret
    dump = io.StringIO()
    call_command("dumpdata", "events", "loyalty", stdout=dump)
    assert ep.secret not in dump.getvalue()
    assert ep.secret not in caplog.text
    for r in receiver.requests:
        assert ep.secret not in r["body"].decode() + json.dumps(r["headers"])

    # Bound to its endpoint: copied onto another one, it does not open.
    other = add_endpoint(team_a, receiver.url)
    with pytest.raises(VaultError):
        open_sealed(stored.sealed_secret, context=f"{other.public_id}:secret")


def test_a_secret_that_cannot_be_opened_is_a_failed_attempt_not_a_crash(run, receiver, team_a):
    ep = add_endpoint(team_a, receiver.url)
    other = add_endpoint(team_a, f"{receiver.url}/other")
    WebhookEndpoint.objects.filter(pk=ep.pk).update(sealed_secret=other.sealed_secret)
    emit(team_a, "member.enrolled", memberId="mem_1")
    run()
    d = EventDelivery.objects.get(endpoint=ep)
    assert d.state == "pending" and "cannot be opened" in d.last_error
    assert receiver.bodies() and all(r["path"] == "/other" for r in receiver.requests)


# --- concurrency (PostgreSQL) -----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_never_deliver_one_event_twice(receiver, team_a):
    assert connection.vendor == "postgresql"  # SQLite would serialize them vacuously
    add_endpoint(team_a, f"{receiver.url}/a")
    add_endpoint(team_a, f"{receiver.url}/b", ["points.awarded"])
    automations_on(team_a, "welcome")
    members = [loyalty.member_enroll(team=team_a, email=f"m{i}@example.com") for i in range(10)]
    for i in range(30):
        emit(team_a, "points.awarded", memberId=members[i % 10].public_id, points=i)

    results = run_concurrently(4, lambda i: dispatch.outbox_dispatch(batch_size=3))

    assert all(isinstance(r, int) for r in results), results
    assert sum(results) == 40  # every event taken by exactly one dispatcher
    ids_a = [b["id"] for b in receiver.bodies("/a")]
    ids_b = [b["id"] for b in receiver.bodies("/b")]
    assert len(ids_a) == len(set(ids_a)) == 40
    assert len(ids_b) == len(set(ids_b)) == 30
    assert EventDelivery.objects.count() == 70
    assert set(EventDelivery.objects.values_list("state", "attempts")) == {("succeeded", 1)}
    assert not OutboxEvent.objects.filter(dispatched_at__isnull=True).exists()
    assert len(mail.outbox) == EmailSent.objects.count() == 10


@pytest.mark.django_db(transaction=True)
def test_one_delivery_attempted_by_two_workers_is_sent_once(receiver, team_a):
    add_endpoint(team_a, receiver.url)
    emit(team_a, "member.enrolled", memberId="mem_1")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tasks.deliver, "delay", lambda pk: None)
        dispatch.outbox_dispatch()
    d = EventDelivery.objects.get()
    receiver.delay = 0.2  # keep the first attempt in flight while the others try

    results = run_concurrently(5, lambda i: dispatch.delivery_attempt(delivery_id=d.pk))

    assert sorted(results) == ["skipped"] * 4 + ["succeeded"]
    assert len(receiver.requests) == 1
    d.refresh_from_db()
    assert (d.state, d.attempts) == ("succeeded", 1)


@pytest.mark.django_db(transaction=True)
def test_one_email_sent_by_two_workers_is_sent_once(team_a):
    automations_on(team_a, "post_purchase")
    member = loyalty.member_enroll(team=team_a, email="ann@example.com")
    event = emit(team_a, "purchase.first", memberId=member.public_id, points=120)

    results = run_concurrently(
        6, lambda i: automations.automation_send(kind="post_purchase", event_id=event.pk)
    )

    assert sorted(results) == [False] * 5 + [True]
    assert len(mail.outbox) == EmailSent.objects.count() == 1


# --- e-mail automations -----------------------------------------------------------------------


def automations_on(team, *kinds):
    for kind in AutomationKind.values:
        services.automation_set(team=team, kind=kind, enabled=kind in kinds)


def test_welcome_email_on_enrollment(run, team_a, reward_a):
    automations_on(team_a, "welcome")
    loyalty.member_enroll(team=team_a, email="ann@example.com", name="Ann")
    run()
    [msg] = mail.outbox
    assert msg.to == ["ann@example.com"]
    assert msg.subject == "Welcome to Alpha Coffee rewards"
    assert "Hi Ann" in msg.body and "Free coffee: 100 points" in msg.body
    html, mime = msg.alternatives[0]
    assert mime == "text/html" and "Welcome, Ann!" in html
    assert EmailSent.objects.get().kind == "welcome"


def test_post_purchase_email_says_how_many_points_were_earned(run, team_a, member_a):
    automations_on(team_a, "post_purchase")
    # A real purchase through the one formula: 120.00 USD at 1 point per dollar.
    loyalty.points_award(member=member_a, amount="120.00", key="shopify-order:1", source="shopify")
    assert OutboxEvent.objects.get(event_type="purchase.first").payload["points"] == 120
    run()
    [msg] = mail.outbox
    assert msg.to == ["ann@example.com"]
    assert msg.subject == "You just earned 120 points"
    assert "You just earned 120 points." in msg.body
    assert "120.00 USD" in msg.body and "Your balance: 120 points" in msg.body
    assert 'data-points="120"' in msg.alternatives[0][0]


def test_pending_and_pointless_purchases_are_worded_sensibly(run, team_a, member_a):
    automations_on(team_a, "post_purchase")
    team_a.vesting_days = 14
    team_a.save()
    emit(team_a, "purchase.first", memberId=member_a.public_id, points=80, pending=True)
    emit(team_a, "purchase.repeat", memberId=member_a.public_id, points=0, amount="0.40")
    run()
    pending, nothing = mail.outbox
    assert pending.subject == "You just earned 80 points (pending)"
    assert "pending for now" in pending.body and "14-day return window" in pending.body
    assert nothing.subject == "Thanks for your purchase at Alpha Coffee"
    assert "did not earn points this time" in nothing.body
    assert "0 points" not in nothing.subject


def test_cross_sell_after_a_repeat_purchase_lists_rewards_within_reach(run, team_a, member_a):
    automations_on(team_a, "post_purchase", "cross_sell")
    RewardFactory(team=team_a, name="Free coffee", points_cost=100)
    RewardFactory(team=team_a, name="Tote bag", points_cost=300)
    RewardFactory(team=team_a, name="Retired mug", points_cost=200, active=False)
    loyalty.points_award(member=member_a, amount="60", key="order-1", source="store")
    loyalty.points_award(member=member_a, amount="60", key="order-2", source="store")
    run()
    subjects = sorted(m.subject for m in mail.outbox)
    assert subjects == [
        "Rewards within reach at Alpha Coffee",
        "You just earned 60 points",
        "You just earned 60 points",
    ]
    [cross] = [m for m in mail.outbox if m.subject.startswith("Rewards")]
    assert "You have 120 points" in cross.body
    assert "Free coffee (100 points): yours to redeem now" in cross.body
    assert "Tote bag (300 points): 180 points away" in cross.body
    assert "Retired mug" not in cross.body
    assert set(EmailSent.objects.values_list("kind", flat=True)) == {
        "post_purchase",
        "cross_sell",
    }


def test_cross_sell_without_rewards_sends_nothing(run, team_a, member_a):
    automations_on(team_a, "cross_sell")
    emit(team_a, "purchase.repeat", memberId=member_a.public_id, points=5)
    run()
    assert mail.outbox == [] and not EmailSent.objects.exists()


def test_each_email_is_sent_once_however_often_the_event_is_seen(run, team_a, member_a):
    automations_on(team_a, "post_purchase")
    event = emit(team_a, "purchase.first", memberId=member_a.public_id, points=42)
    run()
    OutboxEvent.objects.update(dispatched_at=None)
    run()
    run(tasks.send_automation_email, kind="post_purchase", event_id=event.pk)
    assert len(mail.outbox) == 1
    assert EmailSent.objects.get().event == event


def test_no_email_when_the_automation_is_off(run, team_a, member_a):
    event = emit(team_a, "purchase.first", memberId=member_a.public_id, points=42)
    run()  # no automation rows at all: every automation starts off
    automations_on(team_a)  # rows exist, all off
    emit(team_a, "member.enrolled", memberId=member_a.public_id)
    run()
    assert mail.outbox == []
    # Switching on later does not mail about events already dispatched...
    automations_on(team_a, "post_purchase", "welcome")
    run()
    assert mail.outbox == []
    # ...and switching off between dispatch and sending stops the e-mail too.
    automations_on(team_a)
    assert automations.automation_send(kind="post_purchase", event_id=event.pk) is False
    assert mail.outbox == [] and not EmailSent.objects.exists()


def test_an_automation_only_answers_its_own_events(team_a, member_a):
    automations_on(team_a, *AutomationKind.values)
    event = OutboxEvent.objects.get(event_type="member.enrolled")
    assert automations.automation_send(kind="cross_sell", event_id=event.pk) is False
    assert automations.automation_send(kind="post_purchase", event_id=event.pk) is False
    assert mail.outbox == []


def test_blocked_or_unknown_members_get_no_email(run, team_a, member_a, member_b):
    automations_on(team_a, "post_purchase")
    member_a.status = "blocked"
    member_a.save()
    emit(team_a, "purchase.first", memberId=member_a.public_id, points=10)
    emit(team_a, "purchase.first", memberId=member_b.public_id, points=10)  # another team's
    emit(team_a, "purchase.first", points=10)
    run()
    assert mail.outbox == []


def test_a_failed_send_can_be_retried_and_then_sends_once(team_a, member_a, monkeypatch):
    automations_on(team_a, "welcome")
    event = OutboxEvent.objects.get(event_type="member.enrolled")
    from django.core.mail import EmailMultiAlternatives

    real_send = EmailMultiAlternatives.send
    calls = {"n": 0}

    def flaky_send(self, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 1:
            raise smtplib.SMTPServerDisconnected("connection lost")
        return real_send(self, *a, **kw)

    monkeypatch.setattr(EmailMultiAlternatives, "send", flaky_send)
    with pytest.raises(smtplib.SMTPException):
        automations.automation_send(kind="welcome", event_id=event.pk)
    assert not EmailSent.objects.exists()  # rolled back with the failed send
    assert automations.automation_send(kind="welcome", event_id=event.pk) is True
    assert automations.automation_send(kind="welcome", event_id=event.pk) is False
    assert len(mail.outbox) == 1


def test_the_management_command_dispatches_and_retries(receiver, team_a, capsys):
    add_endpoint(team_a, receiver.url)
    emit(team_a, "member.enrolled", memberId="mem_1")
    call_command("dispatch_events")
    assert "dispatched 1 event(s)" in capsys.readouterr().out
    assert OutboxEvent.objects.get().dispatched_at is not None
