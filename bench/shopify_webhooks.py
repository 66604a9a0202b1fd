"""Shopify order webhooks: deliveries accepted per second and their latency (HMAC + record +
enqueue, gunicorn), then paid orders turned into awards per second by one Celery worker.

1. Accepted — CLIENTS concurrent clients (CLIENT_PROCS processes × threads, each thread one
   keep-alive ``http.client`` connection) POST signed ``orders/paid`` webhooks to
   ``/webhooks/shopify`` on gunicorn: a unique order and X-Shopify-Event-Id each, the buyer
   one of the bench members. The view finds the channel by its shop domain, opens the sealed
   client secret, checks the base64 HMAC-SHA256 of the body, matches the buyer's e-mail to a
   member, records a WebhookDelivery and enqueues ``process_webhook`` on a REAL broker (Redis,
   ``CELERY_BROKER_URL``) after commit. A short warm-up, then a fixed window; anything but a
   200 "Received." counts as a failure (the bench fails above MAX_FAILED). No worker runs
   meanwhile, so the queue only fills.
2. Awards — then ONE Celery worker (``-P solo``: one process that takes a message, runs the
   task and acks it, no pool child in between) drains that queue. awards/s is the processed
   deliveries over the span of their ``processed_at`` stamps (worker start-up excluded); the
   wall time from spawning the worker to the last one is reported beside it.
3. Consistency — every accepted delivery recorded and processed, one ledger entry and one
   awarded ShopifyOrder per order, every balance equal to its entries (``ledger_mismatches``).

The worker and gunicorn get the production-like settings: DEBUG off, persistent database
connections (CONN_MAX_AGE=60), Redis as broker, result backend and cache (one Redis database
of the bench's own, emptied before and after).

Knobs (environment): BENCH_WEBHOOK_CLIENTS (16), BENCH_WEBHOOK_CLIENT_PROCS (4),
BENCH_DURATION seconds measured (10, shared), BENCH_WEBHOOK_WARMUP seconds (2),
BENCH_WEBHOOK_MEMBERS (2000), BENCH_CELERY_REDIS_URL (redis://127.0.0.1:6379/4),
BENCH_WEBHOOK_DRAIN_TIMEOUT seconds the worker may take (120); gunicorn's shape comes from
bench/api_http.py's BENCH_HTTP_WORKERS / _WORKER_CLASS / _THREADS.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import hashlib
import hmac
import http.client
import json
import multiprocessing as mp
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from . import api_http, common, ledger

CLIENTS = int(os.environ.get("BENCH_WEBHOOK_CLIENTS", 16))
CLIENT_PROCS = int(os.environ.get("BENCH_WEBHOOK_CLIENT_PROCS", 4))
DURATION = float(os.environ.get("BENCH_DURATION", 10))
WARMUP_S = float(os.environ.get("BENCH_WEBHOOK_WARMUP", 2))
MEMBERS = int(os.environ.get("BENCH_WEBHOOK_MEMBERS", 2000))
REDIS_URL = os.environ.get("BENCH_CELERY_REDIS_URL", "redis://127.0.0.1:6379/4")
DRAIN_TIMEOUT_S = float(os.environ.get("BENCH_WEBHOOK_DRAIN_TIMEOUT", 120))
MAX_FAILED = api_http.MAX_FAILED  # 0.1 %
WORKER_POOL = "solo"
WORKER_COMMAND = [
    sys.executable, "-m", "celery", "-A", "flash", "worker",
    "-P", WORKER_POOL, "-c", "1",
    "--without-gossip", "--without-mingle", "-l", "warning",
]  # fmt: skip
QUEUE = "webhooks"  # the webhook processing queue: a Redis list of that name in the broker
SHOP_DOMAIN = "bench-store.myshopify.com"
CLIENT_SECRET = "bench-secret-" + "0123456789abcdef" * 2  # signs the webhooks (bench data only)
TOTAL = "42.00"  # every order: × rate 1 = 42 points
POINTS = 42
TOPIC = "orders/paid"
ORDER_ID_BASE = 5_900_000_000
PER_CLIENT_IDS = 10_000_000  # client n's orders are ORDER_ID_BASE + n × this + i
REPO = Path(__file__).resolve().parent.parent
NO_ANSWER = common.NO_ANSWER
URL_PATH = "/webhooks/shopify"
RECEIVED = b'"message": "Received."'


# --- set-up --------------------------------------------------------------------------------


def _setup() -> list[str]:
    """Empty loyalty and channel tables; one omnichannel team (USD, rate 1, no cap, no vesting)
    with MEMBERS members and a Shopify channel whose sealed secrets hold the client secret.
    Returns the members' e-mails in pk order."""
    from channels_app.models import Channel, Kind
    from loyalty.models import EarningPolicy, Member, Plan, Team

    common.truncate_app_tables("loyalty", "channels_app")
    team = Team.objects.create(
        name="Bench webhooks", slug="bench-webhooks", plan=Plan.OMNICHANNEL, currency="USD"
    )
    EarningPolicy.objects.create(team=team, currency="USD", rate=Decimal("1.0000"))
    Member.objects.bulk_create(
        [Member(team=team, email=f"buyer{i}@bench.example") for i in range(MEMBERS)],
        batch_size=2000,
    )
    channel = Channel(
        team=team,
        kind=Kind.SHOPIFY,
        name="Bench store",
        config={"shop_domain": SHOP_DOMAIN, "api_version": "2026-10"},
    )
    channel.set_secret("access_token", "shpat_bench" + "0" * 28)
    channel.set_secret("client_secret", CLIENT_SECRET)
    channel.save()
    ledger._analyze("loyalty_member", "channels_app_channel")
    return list(Member.objects.order_by("pk").values_list("email", flat=True))


def _redis():
    import redis

    return redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=5)


@contextlib.contextmanager
def _env(**values: str):
    """``os.environ`` with these values while the block runs (what a child inherits)."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _celery_env(database_url: str) -> dict[str, str]:
    """What gunicorn and the worker share on top of the bench's Django environment."""
    return {
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": REDIS_URL,  # set → not eager: .delay() really enqueues
        "CELERY_RESULT_BACKEND": REDIS_URL,
        "REDIS_URL": REDIS_URL,
        "CONN_MAX_AGE": "60",
    }


class Gunicorn(api_http.Gunicorn):
    """api_http's gunicorn with a real Celery broker in its environment."""

    def __init__(self, database_url: str):
        with _env(**_celery_env(database_url)):
            super().__init__(database_url, REDIS_URL)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its children, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if pid in (int(entry.name), int(fields[1])):
            total += int(fields[11]) + int(fields[12])
    return total / ticks


# --- clients (separate processes, a few threads each) --------------------------------------


def _payload(order_id: int, email: str, now: str) -> dict:
    """An ``orders/paid`` REST payload as Shopify sends it (the emulator's shape)."""
    return {
        "id": order_id,
        "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
        "name": f"#B{order_id}",
        "order_number": order_id,
        "email": email,
        "created_at": now,
        "updated_at": now,
        "processed_at": now,
        "cancelled_at": None,
        "cancel_reason": None,
        "currency": "USD",
        "total_price": TOTAL,
        "current_total_price": TOTAL,
        "subtotal_price": TOTAL,
        "financial_status": "paid",
        "fulfillment_status": None,
        "customer": {
            "id": order_id + 7,
            "email": email,
            "first_name": "Bench",
            "last_name": "Buyer",
        },
        "line_items": [{"title": "Bench item", "quantity": 1, "price": TOTAL}],
        "refunds": [],
        "test": False,
    }


def _not_received(body: bytes) -> str | None:
    return None if RECEIVED in body else "200 but not received"  # e.g. "Duplicate delivery"


def _signed(raw: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha256).digest()).decode()


def _client_proc(port, nonce, emails, firsts, start_at, ready, go, out):
    """Clients ``firsts`` of this process, one thread and one connection each."""
    try:
        ready.put(firsts[0])
        go.wait()
        began = start_at.value
        warm_end, deadline = began + WARMUP_S, began + WARMUP_S + DURATION
        results = [None] * len(firsts)

        def client(n: int, c: int) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            tally, size = common.ClientTally(warm_end), 0
            while (now := time.monotonic()) < began:
                time.sleep(min(0.01, began - now))
            i = 0
            while True:
                order_id = ORDER_ID_BASE + c * PER_CLIENT_IDS + i
                email = emails[(c + i * CLIENTS) % len(emails)]
                stamp = datetime.now(UTC).isoformat(timespec="seconds")
                raw = json.dumps(_payload(order_id, email, stamp), separators=(",", ":")).encode()
                size = len(raw)
                headers = {
                    "Content-Type": "application/json",
                    "X-Shopify-Topic": TOPIC,
                    "X-Shopify-Hmac-Sha256": _signed(raw, CLIENT_SECRET),
                    "X-Shopify-Shop-Domain": SHOP_DOMAIN,
                    "X-Shopify-API-Version": "2026-10",
                    "X-Shopify-Webhook-Id": f"bench-wh-{nonce}-{c}-{i}",
                    "X-Shopify-Event-Id": f"bench-ev-{nonce}-{c}-{i}",
                    "X-Shopify-Triggered-At": stamp,
                }
                i += 1
                if (
                    tally.post(conn, "/webhooks/shopify", raw, headers, check=_not_received)
                    >= deadline
                ):
                    break
            conn.close()
            results[n] = (*tally.result(), size)

        threads = [
            threading.Thread(target=client, args=(n, c), daemon=True) for n, c in enumerate(firsts)
        ]
        for t in threads:
            t.start()
        time.sleep(max(0.0, warm_end - time.monotonic()))
        cpu_began = time.process_time()
        for t in threads:
            t.join()
        cpu = time.process_time() - cpu_began
        if any(r is None for r in results):
            raise RuntimeError("a client thread died (see its traceback above)")
        out.put(("done", firsts[0], {"results": results, "cpu": cpu}))
    except BaseException:
        out.put(("error", firsts[0], traceback.format_exc()))


def _drive(server: Gunicorn, emails: list[str]) -> dict:
    ctx = mp.get_context("spawn")
    ready, out, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    start_at = ctx.Value("d", 0.0)
    nonce = secrets.token_hex(4)
    per_proc = -(-CLIENTS // CLIENT_PROCS)
    groups = [list(range(f, min(f + per_proc, CLIENTS))) for f in range(0, CLIENTS, per_proc)]
    procs = [
        ctx.Process(
            target=_client_proc,
            args=(server.port, nonce, emails, g, start_at, ready, go, out),
            name="bench-webhooks",
            daemon=True,
        )
        for g in groups
    ]
    done, server_cpu, server_seconds = common.run_client_processes(
        procs,
        ready=ready,
        out=out,
        go=go,
        start_at=start_at,
        expected={g[0] for g in groups},
        server=server,
        warmup=WARMUP_S,
        duration=DURATION,
    )

    statuses, in_window = collections.Counter(), collections.Counter()
    latencies, samples, lasts, size = [], [], [], 0
    for part in done:
        for s, w, lat, smp, last, sz in part["results"]:
            statuses.update(s)
            in_window.update(w)
            latencies += lat
            samples += smp
            size = max(size, sz)
            if last is not None:
                lasts.append(last)
    seconds = max(lasts) - (start_at.value + WARMUP_S)
    requests = sum(in_window.values())
    client_cpu = sum(part["cpu"] for part in done)
    return {
        "deliveries": requests,  # answered or not, in the measured window
        "accepted": in_window[200],
        "seconds": round(seconds, 3),
        "deliveries_per_s": round(requests / seconds, 1),
        "accepted_per_s": round(in_window[200] / seconds, 1),
        "latency": common.percentiles(latencies),
        "body_bytes": size,
        # the whole run, warm-up included: any failure counts
        "failed": sum(statuses.values()) - statuses[200],
        "statuses": {str(k): v for k, v in sorted(statuses.items(), key=str)},
        "failure_samples": samples[:5],
        "server_cpu_ms_per_delivery": round(server_cpu / requests * 1000, 2),
        "server_cpu_cores": round(server_cpu / server_seconds, 2),
        "client_cpu_cores": round(client_cpu / seconds, 2),
        "all_sent": sum(statuses.values()),
        "all_accepted": statuses[200],
        "all_no_answer": statuses[NO_ANSWER],
    }


def _accept(url: str, emails: list[str]) -> dict:
    from django.db import connections

    connections.close_all()
    server = Gunicorn(url)
    try:
        server.wait_ready()
        part = _drive(server, emails)
        # Celery's Redis result backend subscribes the producer to each task's result
        # channel on .delay(); what is still subscribed while gunicorn runs:
        part["result_channels_subscribed"] = len(_redis().pubsub_channels())
    except RuntimeError as exc:
        return {"error": str(exc), "server": server.describe()}
    finally:
        server.stop()
        log_tail = server.log_tail(15)
        server.log.close()
    part["server"] = server.describe()
    if part["failed"]:
        part["server_log_tail"] = log_tail
    return part


# --- one Celery worker ---------------------------------------------------------------------


def _progress(conn) -> dict:
    row = conn.execute(
        "SELECT count(*),"
        " count(*) FILTER (WHERE status = 'processed'),"
        " count(*) FILTER (WHERE status = 'failed'),"
        " min(processed_at), max(processed_at)"
        " FROM channels_app_webhookdelivery"
    ).fetchone()
    return dict(zip(("recorded", "processed", "failed", "first", "last"), row, strict=True))


def _drain(url: str) -> dict:
    """Start one worker on the filled queue, wait until every delivery is settled, stop it."""
    import psycopg

    r = _redis()
    queued = r.llen(QUEUE)
    conn = psycopg.connect(common.libpq_url(url), autocommit=True)
    log = tempfile.NamedTemporaryFile(prefix="bench-celery-", suffix=".log")
    env = {**os.environ, **_celery_env(url)}
    started = time.monotonic()
    proc = subprocess.Popen(
        WORKER_COMMAND,
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    cpu = first_seen = None
    try:
        give_up = started + DRAIN_TIMEOUT_S
        while True:
            p = _progress(conn)
            now = time.monotonic()
            if first_seen is None and p["processed"] + p["failed"]:
                first_seen = now - started
            if p["processed"] + p["failed"] >= p["recorded"]:
                break
            if proc.poll() is not None:
                raise RuntimeError(f"the worker exited with {proc.returncode}")
            if now > give_up:
                raise RuntimeError(
                    f"the worker settled {p['processed'] + p['failed']:,} of {p['recorded']:,}"
                    f" deliveries in {DRAIN_TIMEOUT_S:g} s"
                )
            time.sleep(0.1)
        wall = time.monotonic() - started
        cpu = _cpu_seconds(proc.pid)
    except RuntimeError as exc:
        return {"error": str(exc), "queued": queued, "worker_log_tail": _tail(log.name)}
    finally:
        _stop(proc)
        conn.close()
        log_tail = _tail(log.name)
        log.close()
    span = (p["last"] - p["first"]).total_seconds() if p["processed"] > 1 else None
    settled = p["processed"] + p["failed"]
    return {
        "pool": f"{WORKER_POOL}, concurrency 1",
        "queued": queued,  # messages waiting when the worker started
        "processed": p["processed"],
        "failed": p["failed"],
        "awards_per_s": round(p["processed"] / span, 1) if span else None,
        "span_s": round(span, 3) if span else None,  # first to last processed_at
        "ms_per_task": round(span / p["processed"] * 1000, 2) if span else None,
        "wall_s": round(wall, 3),  # spawn → last settled, start-up included
        "startup_s": round(first_seen, 2) if first_seen is not None else None,
        "worker_cpu_ms_per_task": round(cpu / settled * 1000, 2) if settled else None,
        "left_in_queue": r.llen(QUEUE),
        "redis_keys_after": r.dbsize(),  # the stored task results, mostly
        "worker_log_tail": log_tail if p["failed"] else None,
    }


def _tail(path: str, lines: int = 15) -> str:
    text = Path(path).read_text(errors="replace").strip().splitlines()
    return "\n".join(text[-lines:]) or "(the worker wrote nothing)"


def _stop(proc: subprocess.Popen) -> None:
    """Warm shutdown (SIGTERM: finish the task in hand), then kill."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


# --- checks --------------------------------------------------------------------------------


def _consistency(accept: dict) -> dict:
    """Every accepted delivery recorded and processed once; one entry and one awarded order
    per delivery, of the right points; every balance equal to the sum of its entries."""
    from django.db.models import Count, Sum

    from channels_app.models import ShopifyOrder, WebhookDelivery
    from loyalty.models import LedgerEntry
    from loyalty.selectors import ledger_mismatches

    deliveries = WebhookDelivery.objects.aggregate(
        n=Count("id"), orders=Count("projection__gid", distinct=True)
    )
    processed = WebhookDelivery.objects.filter(status="processed").count()
    entries = LedgerEntry.objects.aggregate(
        n=Count("id"), keys=Count("idempotency_key", distinct=True), points=Sum("points")
    )
    awarded = ShopifyOrder.objects.filter(outcome="awarded").count()
    orders = ShopifyOrder.objects.count()
    off = ledger_mismatches()
    accepted, recorded = accept["all_accepted"], deliveries["n"]
    ok = (
        # a request that got no answer may still have been recorded
        accepted <= recorded <= accepted + accept["all_no_answer"]
        and processed == recorded == deliveries["orders"]
        and entries["n"] == entries["keys"] == recorded == orders == awarded
        and (entries["points"] or 0) == POINTS * recorded
        and not off
    )
    return {
        "ok": ok,
        "accepted": accepted,
        "recorded": recorded,
        "processed": processed,
        "orders": orders,
        "awarded_orders": awarded,
        "entries": entries["n"],
        "distinct_entry_keys": entries["keys"],
        "points": entries["points"] or 0,
        "balances_off": len(off),
    }


def _statements() -> dict:
    """SQL statements of one delivery in the view (enqueue stubbed) and of its task, counted
    in-process afterwards on one more order (transaction control not counted)."""
    from unittest import mock

    from django.db import connection
    from django.test import Client, override_settings
    from django.test.utils import CaptureQueriesContext

    from channels_app import order_bridge
    from channels_app.models import WebhookDelivery
    from loyalty.models import Member

    control = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")

    def counted(captured) -> int:
        return sum(not q["sql"].upper().startswith(control) for q in captured.captured_queries)

    email = Member.objects.order_by("pk").values_list("email", flat=True).first()
    order_id = ORDER_ID_BASE - 1
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    raw = json.dumps(_payload(order_id, email, stamp), separators=(",", ":")).encode()
    headers = {
        "X-Shopify-Topic": TOPIC,
        "X-Shopify-Hmac-Sha256": _signed(raw, CLIENT_SECRET),
        "X-Shopify-Shop-Domain": SHOP_DOMAIN,
        "X-Shopify-Event-Id": "bench-count",
        "X-Shopify-Triggered-At": stamp,
    }
    with (
        override_settings(ALLOWED_HOSTS=["*"], SECURE_SSL_REDIRECT=False),
        mock.patch.object(order_bridge.process_webhook, "delay") as delay,
        CaptureQueriesContext(connection) as view,
    ):
        status = (
            Client()
            .post("/webhooks/shopify", raw, content_type="application/json", headers=headers)
            .status_code
        )
    delivery = WebhookDelivery.objects.get(event_id="bench-count")
    with CaptureQueriesContext(connection) as task:
        outcome = order_bridge.process_webhook(delivery.pk)
    return {
        "view": counted(view) if status == 200 and delay.called else None,
        "task": counted(task) if outcome == "processed" else None,
    }


# --- the benchmark -------------------------------------------------------------------------


def _redis_problem() -> str | None:
    try:
        _redis().ping()
    except Exception as exc:  # any failure to answer PING
        return (
            f"Redis at {REDIS_URL} does not answer ({type(exc).__name__}: {exc}); start "
            "redis-server or point BENCH_CELERY_REDIS_URL at one"
        )
    return None


def run() -> dict:
    url = common.prepare()
    began = time.perf_counter()
    environment = common.environment()
    accept = drain = consistency = statements = None
    if problem := _redis_problem():
        accept = {"error": problem}
    else:
        emails = _setup()
        r = _redis()
        r.flushdb()
        try:
            print(
                f"shopify_webhooks: {CLIENTS} clients ({CLIENT_PROCS} processes) × "
                f"{DURATION:g} s after {WARMUP_S:g} s warm-up, {api_http._server_label()},"
                f" Redis broker {REDIS_URL} …",
                flush=True,
            )
            accept = _accept(url, emails)
            if "error" not in accept:
                print(
                    f"shopify_webhooks: one Celery worker ({WORKER_POOL}) drains"
                    f" {r.llen(QUEUE):,} queued deliveries …",
                    flush=True,
                )
                drain = _drain(url)
                if "error" not in drain:
                    consistency = _consistency(accept)
                    statements = _statements()
        finally:
            r.flushdb()
    return {
        "bench": "shopify_webhooks",
        "environment": environment,
        "loadavg_1m_end": round(os.getloadavg()[0], 2),
        "params": {
            "clients": CLIENTS,
            "client_processes": CLIENT_PROCS,
            "duration_s": DURATION,
            "warmup_s": WARMUP_S,
            "members": MEMBERS,
            "topic": TOPIC,
            "order_total": TOTAL,
            "points_per_order": POINTS,
            "gunicorn": {
                "worker_class": api_http.WORKER_CLASS,
                "workers": api_http.GUNICORN_WORKERS,
                "threads": api_http.THREADS,
            },
            "celery_worker": " ".join(WORKER_COMMAND[1:]),
            "redis": REDIS_URL,
        },
        "accept": accept,
        "awards": drain if drain is not None else {"error": "not run"},
        "consistency": consistency,
        "statements_per_delivery": statements,
        "total_seconds": round(time.perf_counter() - began, 1),
    }


def failed(result: dict) -> list[str]:
    problems = []
    a, w, c = result["accept"], result["awards"], result["consistency"]
    if "error" in a:
        problems.append(f"accept: {a['error']}")
    elif a["failed"] > MAX_FAILED * a["all_sent"]:
        problems.append(
            f"accept: {a['failed']} of {a['all_sent']} deliveries failed {a['statuses']}"
            f" {a['failure_samples'][:2]}"
        )
    if "error" in w:
        if "error" not in a:
            problems.append(f"awards: {w['error']}")
    elif w["failed"]:
        problems.append(f"awards: {w['failed']} deliveries failed in the task")
    if c is not None and not c["ok"]:
        problems.append(f"inconsistent {c}")
    return problems


def render(result: dict) -> None:
    p, a, w, c = result["params"], result["accept"], result["awards"], result["consistency"]
    rows = []
    if "error" in a:
        rows.append([f"accept    {a.get('server', '')}", "ERROR", "", "", "", "", "", "", ""])
    else:
        lat = a["latency"]
        rows.append(
            [
                f"accept    {a['server']}",
                f"{a['deliveries_per_s']:,.0f}",
                f"{a['deliveries']:,}",
                f"{a['seconds']:.1f}",
                f"{lat['p50_ms']:.2f}",
                f"{lat['p90_ms']:.2f}",
                f"{lat['p99_ms']:.2f}",
                f"{a['failed']:,}",
                f"{a['server_cpu_ms_per_delivery']:.2f}",
            ]
        )
    if "error" in w:
        rows.append(["award     1 Celery worker", "ERROR", "", "", "", "", "", "", ""])
    else:
        rows.append(
            [
                f"award     1 Celery worker ({w['pool']})",
                f"{w['awards_per_s']:,.0f}" if w["awards_per_s"] else "-",
                f"{w['processed']:,}",
                f"{w['span_s']:.1f}" if w["span_s"] else "-",
                "",
                "",
                "",
                f"{w['failed']:,}",
                f"{w['worker_cpu_ms_per_task']:.2f}" if w["worker_cpu_ms_per_task"] else "-",
            ]
        )
    common.print_table(
        f"Shopify orders/paid webhooks — {p['clients']} clients ({p['client_processes']}"
        f" processes), HMAC + record + enqueue on Redis; then one worker awards",
        ["path", "per s", "count", "s", "p50 ms", "p90 ms", "p99 ms", "failed", "cpu ms"],
        rows,
    )
    if "error" in a:
        print(f"accept ERROR: {a['error']}")
    else:
        if a["failed"]:
            print(f"accept failures {a['statuses']}; gunicorn's log ends:\n{a['server_log_tail']}")
        print(
            f"accept: {a['all_accepted']:,} deliveries accepted in all (warm-up included),"
            f" {a['body_bytes']:,}-byte bodies; server used {a['server_cpu_cores']:.2f} cores,"
            f" the load generator {a['client_cpu_cores']:.2f};"
            f" {a['result_channels_subscribed']:,} result channels subscribed at the end"
        )
    if "error" in w:
        if "error" not in a:
            print(f"awards ERROR: {w['error']}\n{w.get('worker_log_tail', '')}")
    else:
        print(
            f"awards: {w['queued']:,} queued; worker took {w['wall_s']:.1f} s from spawn"
            f" ({w['startup_s']:.1f} s to the first award), {w['ms_per_task']:.2f} ms per"
            f" task; {w['left_in_queue']} left in the queue, {w['redis_keys_after']:,} Redis"
            " keys (results)"
        )
    if result["statements_per_delivery"]:
        st = result["statements_per_delivery"]
        print(
            f"SQL statements per delivery: view {st['view']}, task {st['task']}"
            " (transaction control not counted)"
        )
    if c is not None:
        print(
            f"consistency {'ok' if c['ok'] else 'FAILED'}: {c['accepted']:,} accepted,"
            f" {c['recorded']:,} recorded, {c['processed']:,} processed, {c['entries']:,}"
            f" entries ({c['distinct_entry_keys']:,} keys, {c['points']:,} points),"
            f" {c['awarded_orders']:,} of {c['orders']:,} orders awarded,"
            f" {c['balances_off']} balances off"
        )
    env = result["environment"]
    print(
        f"load average {env['loadavg_1m']:.2f} → {result['loadavg_1m_end']:.2f} on"
        f" {env['cpus']} CPUs (figures are noisy on a shared box)"
    )
    print(f"shopify_webhooks bench: {result['total_seconds']:.0f} s")
