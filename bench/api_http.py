"""The v2 API over HTTP: award requests/s and latency with gunicorn, PostgreSQL and Redis.

1. HTTP — ``POST /api/v2/members/{id}/points`` (``{"amount": 10}``, a fresh Idempotency-Key
   each) from CLIENTS concurrent clients (CLIENT_PROCS processes × threads, each thread one
   keep-alive ``http.client`` connection and its own members) against gunicorn on 127.0.0.1, the
   rate limit counted in Redis, one audit row per call. A short warm-up, then a fixed
   window; every answer that is not a 200 is counted (and fails the bench above MAX_FAILED).
2. Service — the same awards (10 points, distinct keys) through ``points_award`` directly,
   from bench/ledger.py's worker processes (its ``_throughput``), so HTTP ÷ service shows
   what HTTP, auth, rate limit, idempotency record and audit row cost together.

Server CPU per request (gunicorn workers, from /proc) beside the service workers' CPU per
award is the ratio that survives a busy machine; requests/s does not.

Knobs (environment): BENCH_HTTP_CLIENTS (16), BENCH_HTTP_CLIENT_PROCS (4), BENCH_DURATION
seconds measured (10, shared with the ledger bench), BENCH_HTTP_WARMUP seconds (2),
BENCH_HTTP_WORKERS (2), BENCH_HTTP_WORKER_CLASS (gthread), BENCH_HTTP_THREADS (8),
BENCH_REDIS_URL (redis://127.0.0.1:6379/3), BENCH_WORKERS (8, the service run).
"""

from __future__ import annotations

import collections
import http.client
import json
import multiprocessing as mp
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

from . import common, ledger

CLIENTS = int(os.environ.get("BENCH_HTTP_CLIENTS", 16))
CLIENT_PROCS = int(os.environ.get("BENCH_HTTP_CLIENT_PROCS", 4))
DURATION = float(os.environ.get("BENCH_DURATION", 10))
WARMUP_S = float(os.environ.get("BENCH_HTTP_WARMUP", 2))
# gthread 2 × 8 beat sync 2/3/4/6 and gthread 2×4, 4×2, 4×4, 3×6, 1×16 on the 2-core box
# (median of repeated runs; noisy): a thread per client, no reconnects, two processes' CPU.
GUNICORN_WORKERS = int(os.environ.get("BENCH_HTTP_WORKERS", 2))
WORKER_CLASS = os.environ.get("BENCH_HTTP_WORKER_CLASS", "gthread")
THREADS = int(os.environ.get("BENCH_HTTP_THREADS", 8))
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/3")
MEMBERS_PER_CLIENT = 25
POINTS = 10
RATE_LIMIT = 10_000_000  # per minute: never reached, but counted in Redis on every call
MAX_FAILED = 0.001  # share of requests that may fail (non-200 or no answer) before it fails
START_TIMEOUT_S = 30
REPO = Path(__file__).resolve().parent.parent
BODY = json.dumps({"amount": POINTS, "description": "bench"}).encode()
NO_ANSWER = common.NO_ANSWER


# --- the service-level figure (bench/ledger.py's processes and driver) ---------------------


def _service_points_worker(url, w, member_pks, duration, ready, start, out):
    """ledger._service_worker with the API's award: a fixed number of points, not an amount."""
    try:
        common.setup_django(url)
        from loyalty.models import Member
        from loyalty.services import points_award

        members = list(Member.objects.select_related("team").filter(pk__in=member_pks))

        def award(i, tag):
            result = points_award(
                member=members[i % len(members)],
                key=f"bench:svc-points:{w}:{tag}{i}",
                source=ledger.SOURCE,
                points=POINTS,
                description="bench",
            )
            if not (result.created and result.entry and result.entry.points == POINTS):
                raise AssertionError(f"unexpected award result {result!r}")

        ledger._drive(w, award, duration, ready, start, out)
    except BaseException:
        out.put(("error", w, traceback.format_exc()))


# --- gunicorn ------------------------------------------------------------------------------


def _redis_problem(url: str) -> str | None:
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2).ping()
    except Exception as exc:  # any failure to answer PING
        return (
            f"Redis at {url} does not answer ({type(exc).__name__}: {exc}); start redis-server "
            "or point BENCH_REDIS_URL at one"
        )
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    """``gunicorn flash.wsgi:application`` on 127.0.0.1, its output kept in a temporary file."""

    def __init__(self, database_url: str, redis_url: str):
        self.port = _free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="bench-gunicorn-", suffix=".log")
        env = dict(os.environ)
        env.update(
            DJANGO_SETTINGS_MODULE="flash.settings",
            DATABASE_URL=database_url,
            REDIS_URL=redis_url,
            SECRET_KEY=common.BENCH_SECRET_KEY,
            DEBUG="0",
            ALLOWED_HOSTS="127.0.0.1",
            SECURE_SSL_REDIRECT="0",
            SESSION_COOKIE_SECURE="0",
            CSRF_COOKIE_SECURE="0",
            CONN_MAX_AGE="60",
            LOG_LEVEL="WARNING",
        )
        self.command = [
            sys.executable, "-m", "gunicorn", "flash.wsgi:application",
            "--bind", f"127.0.0.1:{self.port}",
            "--workers", str(GUNICORN_WORKERS),
            "--worker-class", WORKER_CLASS,
            "--threads", str(THREADS),
            "--log-level", "warning",
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            self.command,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def log_tail(self, lines: int = 25) -> str:
        text = Path(self.log.name).read_text(errors="replace").strip().splitlines()
        return "\n".join(text[-lines:]) or "(gunicorn wrote nothing)"

    def wait_ready(self) -> None:
        """Until a request to a non-API page gets an answer (so it leaves no audit row)."""
        give_up = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"gunicorn exited with {self.proc.returncode} on start:\n{self.log_tail()}"
                )
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            try:
                conn.request("GET", "/")
                conn.getresponse().read()
                return
            except OSError:
                if time.monotonic() > give_up:
                    raise RuntimeError(
                        f"gunicorn did not answer within {START_TIMEOUT_S} s:\n{self.log_tail()}"
                    ) from None
                time.sleep(0.1)
            finally:
                conn.close()

    def cpu_seconds(self) -> float:
        """User + system CPU of the master and its live workers, from /proc."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:  # gone meanwhile
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            pid, ppid = int(entry.name), int(fields[1])
            if self.proc.pid in (pid, ppid):
                total += int(fields[11]) + int(fields[12])  # utime + stime
        return total / ticks

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # graceful: the workers finish and exit
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def describe(self) -> str:
        return _server_label()


def _server_label() -> str:
    threads = f" × {THREADS} threads" if WORKER_CLASS == "gthread" else ""
    return f"gunicorn {WORKER_CLASS} {GUNICORN_WORKERS} workers{threads}"


# --- clients (separate processes, a few threads each) --------------------------------------


def _wrong_points(body: bytes) -> str | None:
    try:
        points = json.loads(body).get("points")
    except (ValueError, AttributeError):
        points = None
    return None if points == POINTS else "200 with a wrong body"


def _client_proc(port, auth, nonce, slices, first, start_at, ready, go, out):
    """Clients ``first …`` of this process, one thread and one connection per slice."""
    try:
        ready.put(first)
        go.wait()
        began = start_at.value
        warm_end, deadline = began + WARMUP_S, began + WARMUP_S + DURATION
        results = [None] * len(slices)

        def client(n: int, members: list[str]) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            tally = common.ClientTally(warm_end)
            headers = {"Authorization": auth, "Content-Type": "application/json"}
            while (now := time.monotonic()) < began:
                time.sleep(min(0.01, began - now))
            i = 0
            while True:
                path = f"/api/v2/members/{members[i % len(members)]}/points"
                headers["Idempotency-Key"] = f"bench-{nonce}-{first + n}-{i}"
                i += 1
                if tally.post(conn, path, BODY, headers, check=_wrong_points) >= deadline:
                    break
            conn.close()
            results[n] = tally.result()

        threads = [
            threading.Thread(target=client, args=(n, members), daemon=True)
            for n, members in enumerate(slices)
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
        out.put(("done", first, {"results": results, "cpu": cpu}))
    except BaseException:
        out.put(("error", first, traceback.format_exc()))


def _drive_http(server: Gunicorn, plaintext: str, member_ids: list[str]) -> dict:
    ctx = mp.get_context("spawn")
    ready, out, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    start_at = ctx.Value("d", 0.0)
    nonce = secrets.token_hex(4)
    slices = [
        member_ids[c * MEMBERS_PER_CLIENT : (c + 1) * MEMBERS_PER_CLIENT] for c in range(CLIENTS)
    ]
    per_proc = -(-CLIENTS // CLIENT_PROCS)
    procs = []
    for first in range(0, CLIENTS, per_proc):
        args = (
            server.port,
            f"Bearer {plaintext}",
            nonce,
            slices[first : first + per_proc],
            first,
            start_at,
            ready,
            go,
            out,
        )
        procs.append(ctx.Process(target=_client_proc, args=args, name="bench-http", daemon=True))
    done, server_cpu, server_seconds = common.run_client_processes(
        procs,
        ready=ready,
        out=out,
        go=go,
        start_at=start_at,
        expected=set(range(0, CLIENTS, per_proc)),
        server=server,
        warmup=WARMUP_S,
        duration=DURATION,
    )

    statuses, in_window = collections.Counter(), collections.Counter()
    latencies, samples, lasts = [], [], []
    for part in done:
        for s, w, lat, smp, last in part["results"]:
            statuses.update(s)
            in_window.update(w)
            latencies += lat
            samples += smp
            if last is not None:
                lasts.append(last)
    warm_end = start_at.value + WARMUP_S
    seconds = max(lasts) - warm_end
    requests = sum(in_window.values())
    ok = in_window[200]
    client_cpu = sum(part["cpu"] for part in done)
    return {
        "requests": requests,  # answered or not, in the measured window
        "ok": ok,
        "seconds": round(seconds, 3),
        "requests_per_s": round(requests / seconds, 1),
        "ok_per_s": round(ok / seconds, 1),
        "latency": common.percentiles(latencies),
        # the whole run, warm-up included: any failure counts
        "failed": sum(statuses.values()) - statuses[200],
        "statuses": {str(k): v for k, v in sorted(statuses.items(), key=str)},
        "failure_samples": samples[:5],
        # the server's own CPU (gunicorn master + workers), not PostgreSQL's or Redis's
        "server_cpu_ms_per_request": round(server_cpu / requests * 1000, 2),
        "server_cpu_cores": round(server_cpu / server_seconds, 2),
        # how much of the box the load generator itself took (it is not the server's)
        "client_cpu_cores": round(client_cpu / seconds, 2),
        "client_cpu_ms_per_request": round(client_cpu / requests * 1000, 3),
        "all_requests": sum(statuses.values()),  # warm-up included, for the consistency check
        "all_answered": sum(v for k, v in statuses.items() if k != NO_ANSWER),
        "all_ok": statuses[200],
    }


def _consistency(part: dict) -> dict:
    """One audit row per answered call, one entry, event and idempotency record per 200,
    and every balance equal to the sum of its entries."""
    from loyalty.models import ApiIdempotencyRecord, ApiRequestLog, LedgerEntry, OutboxEvent
    from loyalty.selectors import ledger_mismatches

    audit = ApiRequestLog.objects.count()
    entries = LedgerEntry.objects.count()
    events = OutboxEvent.objects.filter(event_type="points.awarded").count()
    records = ApiIdempotencyRecord.objects.count()
    off = ledger_mismatches()
    ok = (
        audit == part["all_answered"] and entries == events == records == part["all_ok"] and not off
    )
    return {
        "ok": ok,
        "requests_sent": part["all_requests"],
        "answered": part["all_answered"],
        "audit_rows": audit,
        "answered_200": part["all_ok"],
        "entries": entries,
        "events": events,
        "idempotency_records": records,
        "balances_off": len(off),
    }


def _statements_per_call(plaintext: str, member_id: str) -> dict:
    """SQL statements one award sends over the API and through the service, in-process
    (transaction control — BEGIN, SAVEPOINT, RELEASE, COMMIT — not counted)."""
    from django.db import connection
    from django.test import Client, override_settings
    from django.test.utils import CaptureQueriesContext

    from loyalty.models import Member
    from loyalty.services import points_award

    def counted(captured) -> int:
        control = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")
        return sum(not q["sql"].upper().startswith(control) for q in captured.captured_queries)

    client = Client()
    with override_settings(ALLOWED_HOSTS=["*"], SECURE_SSL_REDIRECT=False):

        def call(key: str) -> int:
            return client.post(
                f"/api/v2/members/{member_id}/points",
                BODY,
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {plaintext}",
                HTTP_IDEMPOTENCY_KEY=key,
            ).status_code

        call("bench-count-warm")
        with CaptureQueriesContext(connection) as over_http:
            status = call("bench-count")
    member = Member.objects.select_related("team").get(public_id=member_id)
    with CaptureQueriesContext(connection) as direct:
        points_award(member=member, key="bench:count", source=ledger.SOURCE, points=POINTS)
    return {
        "http": counted(over_http) if status == 200 else None,
        "service": counted(direct),
        "http_with_transaction_control": len(over_http.captured_queries),
    }


def _http(url: str) -> dict:
    from django.db import connections

    from loyalty.api_keys import api_key_create
    from loyalty.models import Member

    team, pks = ledger._fresh_teams(CLIENTS * MEMBERS_PER_CLIENT, prefix="http-")
    _key, plaintext = api_key_create(team=team, name="bench", preset="write", rate_limit=RATE_LIMIT)
    member_ids = list(
        Member.objects.filter(pk__in=pks).order_by("pk").values_list("public_id", flat=True)
    )
    ledger._analyze("loyalty_member", "loyalty_ledgerentry")
    connections.close_all()

    server = Gunicorn(url, REDIS_URL)
    try:
        server.wait_ready()
        part = _drive_http(server, plaintext, member_ids)
    except RuntimeError as exc:
        return {"error": str(exc), "server": server.describe()}
    finally:
        server.stop()
        log_tail = server.log_tail(15)
        server.log.close()
    part["server"] = server.describe()
    if part["failed"]:
        part["server_log_tail"] = log_tail  # why, most likely
    part["consistency"] = _consistency(part)
    part["statements_per_call"] = _statements_per_call(plaintext, member_ids[0])
    return part


# --- the benchmark -------------------------------------------------------------------------


def run() -> dict:
    url = common.prepare()
    began = time.perf_counter()
    environment = common.environment()
    if problem := _redis_problem(REDIS_URL):  # said at once, not after the service run
        service, http_part = {"error": "not run (no Redis)"}, {"error": problem}
    else:
        print(
            f"api_http: service, {ledger.WORKERS} processes × {ledger.DURATION:g} s, "
            f"{POINTS} points per award …",
            flush=True,
        )
        service = ledger._throughput("service", url, _service_points_worker)
        print(
            f"api_http: HTTP, {CLIENTS} clients ({CLIENT_PROCS} processes) × {DURATION:g} s "
            f"after {WARMUP_S:g} s warm-up, {_server_label()} …",
            flush=True,
        )
        http_part = _http(url)
    both = "error" not in http_part and "error" not in service
    return {
        "bench": "api_http",
        "environment": environment,
        "loadavg_1m_end": round(os.getloadavg()[0], 2),
        "params": {
            "clients": CLIENTS,
            "client_processes": CLIENT_PROCS,
            "members_per_client": MEMBERS_PER_CLIENT,
            "duration_s": DURATION,
            "warmup_s": WARMUP_S,
            "gunicorn": {
                "worker_class": WORKER_CLASS,
                "workers": GUNICORN_WORKERS,
                "threads": THREADS,
            },
            "redis": REDIS_URL,
            "rate_limit_per_min": RATE_LIMIT,
            "points": POINTS,
            "service_workers": ledger.WORKERS,
        },
        "http": http_part,
        "service": service,
        "http_over_service": (
            round(http_part["requests_per_s"] / service["awards_per_s"], 3) if both else None
        ),
        "cpu_per_call_ratio": (
            round(http_part["server_cpu_ms_per_request"] / service["client_cpu_ms_per_award"], 2)
            if both
            else None
        ),
        "total_seconds": round(time.perf_counter() - began, 1),
    }


def failed(result: dict) -> list[str]:
    problems = []
    http_part, service = result["http"], result["service"]
    if "error" in http_part:
        problems.append(f"http: {http_part['error']}")
    else:
        if http_part["failed"] > MAX_FAILED * http_part["all_requests"]:
            problems.append(
                f"http: {http_part['failed']} of {http_part['all_requests']} requests failed "
                f"{http_part['statuses']} {http_part['failure_samples'][:2]}"
            )
        if not http_part["consistency"]["ok"]:
            problems.append(f"http: inconsistent {http_part['consistency']}")
    if "error" in service:
        problems.append(f"service: {service['error']}")
    elif not service["consistency"]["ok"]:
        problems.append(f"service: ledger inconsistent {service['consistency']}")
    return problems


def render(result: dict) -> None:
    p, h, s = result["params"], result["http"], result["service"]
    rows = []
    if "error" in h:
        rows.append([f"HTTP      {h.get('server', '')}", "ERROR", "", "", "", "", "", "", ""])
    else:
        lat = h["latency"]
        rows.append(
            [
                f"HTTP      {h['server']}",
                f"{h['requests_per_s']:,.0f}",
                f"{h['requests']:,}",
                f"{h['seconds']:.1f}",
                f"{lat['p50_ms']:.2f}",
                f"{lat['p90_ms']:.2f}",
                f"{lat['p99_ms']:.2f}",
                f"{h['failed']:,}",
                f"{h['server_cpu_ms_per_request']:.2f}",
            ]
        )
    if "error" in s:
        rows.append(["service   points_award", "ERROR", "", "", "", "", "", "", ""])
    else:
        lat = s["latency_under_load"]
        rows.append(
            [
                f"service   points_award, {s['workers']} processes",
                f"{s['awards_per_s']:,.0f}",
                f"{s['awards']:,}",
                f"{s['seconds']:.1f}",
                f"{lat['p50_ms']:.2f}",
                f"{lat['p90_ms']:.2f}",
                f"{lat['p99_ms']:.2f}",
                "0",
                f"{s['client_cpu_ms_per_award']:.2f}",
            ]
        )
    common.print_table(
        f"API awards over HTTP — {p['clients']} clients ({p['client_processes']} processes),"
        f" {p['points']} points each, PostgreSQL + Redis, audit and Idempotency-Key on",
        ["path", "req/s", "requests", "s", "p50 ms", "p90 ms", "p99 ms", "failed", "cpu ms"],
        rows,
    )
    if "error" in h:
        print(f"HTTP ERROR: {h['error']}")
    elif h["failed"]:
        print(f"HTTP failures {h['statuses']}; gunicorn's log ends:\n{h['server_log_tail']}")
    if "error" in s:
        print(f"service ERROR: {s['error']}")
    if result["http_over_service"] is not None:
        print(
            f"HTTP / service = {result['http_over_service']:.2f} in req/s;"
            f" CPU per call ×{result['cpu_per_call_ratio']:.2f}"
            f" (server {h['server_cpu_ms_per_request']:.2f} ms vs service"
            f" {s['client_cpu_ms_per_award']:.2f} ms)"
        )
        st = h["statements_per_call"]
        print(
            f"SQL statements per award: HTTP {st['http']}, service {st['service']}"
            " (transaction control not counted); plus 2 Redis calls (rate limit) over HTTP"
        )
        print(
            f"cpu ms = Python CPU per call (gunicorn workers / service processes);"
            f" server used {h['server_cpu_cores']:.2f} cores, the load generator"
            f" {h['client_cpu_cores']:.2f}"
        )
    if "error" not in h:
        c = h["consistency"]
        print(
            f"consistency {'ok' if c['ok'] else 'FAILED'}: {c['audit_rows']:,} audit rows for"
            f" {c['answered']:,} answered calls, {c['entries']:,} entries / {c['events']:,}"
            f" events / {c['idempotency_records']:,} idempotency records for"
            f" {c['answered_200']:,} 200s, {c['balances_off']} balances off"
        )
    env = result["environment"]
    print(
        f"load average {env['loadavg_1m']:.2f} → {result['loadavg_1m_end']:.2f} on"
        f" {env['cpus']} CPUs (figures are noisy on a shared box)"
    )
    print(f"api_http bench: {result['total_seconds']:.0f} s")
