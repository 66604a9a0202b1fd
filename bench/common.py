"""What every benchmark shares: its own database, Django set-up, clean tables, results."""

from __future__ import annotations

import collections
import http.client
import json
import math
import os
import platform
import queue
import statistics
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/flash"
BENCH_SECRET_KEY = "bench-only-insecure-key-0123456789-abcdefghijklmnopqrstuvwxyz"
# A public AES-256 key ring for channel secrets (bench data only), unless one is set.
BENCH_VAULT_KEYS = "bench:YmVuY2gtb25seS12YXVsdC1rZXktbm90LXNlY3JldCE="


def bench_database_url() -> str:
    """``BENCH_DATABASE_URL``, else ``DATABASE_URL`` with the database renamed ``<name>_bench``.

    The benchmark never touches the development or test database: it truncates its tables.
    """
    if url := os.environ.get("BENCH_DATABASE_URL"):
        return url
    parts = urlsplit(os.environ.get("DATABASE_URL") or DEFAULT_URL)
    if parts.scheme not in ("postgres", "postgresql", "pgsql"):
        raise SystemExit(
            f"bench: needs PostgreSQL, DATABASE_URL is {parts.scheme}://… "
            "(set DATABASE_URL or BENCH_DATABASE_URL to a postgres:// URL)"
        )
    name = parts.path.lstrip("/") or "flash"
    if not name.endswith("_bench"):
        name += "_bench"
    return urlunsplit(parts._replace(path="/" + name))


def libpq_url(url: str) -> str:
    """Django-style URL → one psycopg accepts (``postgres://`` is fine, ``pgsql://`` is not)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql"))


def ensure_database(url: str) -> None:
    """Create the bench database if it is missing (connecting to the ``postgres`` database)."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(libpq_url(url))
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"bench: created database {name}")


def configure_env(url: str) -> None:
    """The environment a bench process (the main one or a worker) runs Django with."""
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "flash.settings"
    os.environ["SECRET_KEY"] = BENCH_SECRET_KEY
    os.environ["DEBUG"] = "0"  # no query log growing in memory, production code paths
    os.environ.setdefault("FLASH_VAULT_KEYS", BENCH_VAULT_KEYS)
    os.environ.setdefault("LOG_LEVEL", "WARNING")


def setup_django(url: str) -> None:
    configure_env(url)
    import django

    django.setup()


_prepared: str | None = None


def prepare() -> str:
    """Create, configure and migrate the bench database once per run; returns its URL."""
    global _prepared
    if _prepared is None:
        url = bench_database_url()
        ensure_database(url)
        setup_django(url)
        from django.core.management import call_command

        started = time.perf_counter()
        call_command("migrate", interactive=False, verbosity=0)
        print(
            f"bench: database {urlsplit(url).path.lstrip('/')} migrated "
            f"({time.perf_counter() - started:.1f} s)"
        )
        _prepared = url
    return _prepared


def truncate_app_tables(*app_labels: str) -> None:
    """Empty every table of the given apps (and whatever references them).

    Only tables that exist: a model whose migration is not written yet is skipped.
    """
    from django.apps import apps
    from django.db import connection

    existing = set(connection.introspection.table_names())
    tables = [
        connection.ops.quote_name(model._meta.db_table)
        for label in app_labels
        for model in apps.get_app_config(label).get_models()
        if model._meta.managed and not model._meta.proxy and model._meta.db_table in existing
    ]
    with connection.cursor() as cur:
        cur.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")


def percentiles(samples_s: list[float]) -> dict:
    """p50 / p90 / p99 / max / mean of durations given in seconds, reported in milliseconds."""
    ordered = sorted(samples_s)

    def pick(q: float) -> float:
        # nearest rank: the smallest sample with at least q of all samples at or below it
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]

    return {
        "n": len(ordered),
        "p50_ms": round(pick(0.50) * 1000, 3),
        "p90_ms": round(pick(0.90) * 1000, 3),
        "p99_ms": round(pick(0.99) * 1000, 3),
        "max_ms": round(ordered[-1] * 1000, 3),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 3),
    }


def environment() -> dict:
    """Where the figures come from, so two result files can be compared honestly."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SHOW server_version")
        pg = cur.fetchone()[0]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent.parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": commit,
        "cpus": os.cpu_count(),
        # other work on the machine skews the figures: compare runs with similar load
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "postgres": pg,
        "database": urlsplit(bench_database_url()).path.lstrip("/"),
    }


def write_results(name: str, data: dict) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    return path


def print_table(title: str, header: list[str], rows: list[list]) -> None:
    cells = [header] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row):
        pairs = enumerate(zip(row, widths, strict=True))
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in pairs)

    print(f"\n{title}")
    print(line(cells[0]))
    print("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        print(line(row))


def run_client_processes(procs, *, ready, out, go, start_at, expected, server, warmup, duration):
    """Start load-generating processes, release them at one instant after they are all ready,
    and collect their reports; returns (reports, server CPU seconds, measured seconds)."""
    for p in procs:
        p.start()
    done, errors = [], []
    try:
        waiting, give_up = set(expected), time.monotonic() + 60
        while waiting:
            try:
                waiting.discard(ready.get(timeout=0.2))
            except queue.Empty:
                if time.monotonic() > give_up or not all(p.is_alive() for p in procs):
                    raise RuntimeError("a client process died or never got ready") from None
        start_at.value = time.monotonic() + 0.2
        go.set()
        time.sleep(max(0.0, start_at.value + warmup - time.monotonic()))
        cpu_began, server_began = server.cpu_seconds(), time.monotonic()
        give_up = time.monotonic() + duration + 60
        while len(done) + len(errors) < len(procs) and time.monotonic() < give_up:
            try:
                status, _first, payload = out.get(timeout=0.2)
            except queue.Empty:
                continue
            (done if status == "done" else errors).append(payload)
        server_cpu = server.cpu_seconds() - cpu_began
        server_seconds = time.monotonic() - server_began
    finally:
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
    if errors or len(done) < len(procs):
        raise RuntimeError(errors[0] if errors else f"only {len(done)} client processes reported")
    return done, server_cpu, server_seconds


NO_ANSWER = "no answer"  # the "status" of a request that got no HTTP response


class ClientTally:
    """One load client's record: every status, those finished inside the measured window with
    their latencies, a few error samples, and when its last measured request finished."""

    def __init__(self, warm_end: float):
        self.warm_end = warm_end
        self.statuses, self.in_window = collections.Counter(), collections.Counter()
        self.latencies, self.samples, self.last = [], [], None

    def post(self, conn, path: str, body: bytes, headers: dict, *, check=None) -> float:
        """POST on a kept-open connection and record it; returns when it finished.
        ``check(answer)`` names what is wrong with a 200's body, or returns None."""
        t0 = time.monotonic()
        try:
            conn.request("POST", path, body, headers)
            response = conn.getresponse()
            answer, status = response.read(), response.status
        except (OSError, http.client.HTTPException) as exc:
            conn.close()  # the next request opens a new connection
            status, answer = NO_ANSWER, repr(exc).encode()
        t1 = time.monotonic()
        if status == 200 and check is not None:
            status = check(answer) or 200
        self.statuses[status] += 1
        if t1 > self.warm_end:  # finished inside the measured window
            self.in_window[status] += 1
            self.latencies.append(t1 - t0)
            self.last = t1
        if status != 200 and len(self.samples) < 3:
            self.samples.append(f"{status}: {answer[:300].decode(errors='replace')}")
        return t1

    def result(self) -> tuple:
        return self.statuses, self.in_window, self.latencies, self.samples, self.last


def redis_client(url: str):
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)


def redis_answers(url: str) -> bool:
    try:
        redis_client(url).ping()
        return True
    except Exception:  # any failure to answer PING: in-process buckets instead
        return False


def amazon_channel(team, server, *, name, client_id, client_secret, refresh_token, marketplace):
    """An Amazon channel of ``team`` pointed at the in-process emulator ``server``."""
    from channels_app.models import Channel, Kind

    channel = Channel(
        team=team,
        kind=Kind.AMAZON,
        name=name,
        config={
            "client_id": client_id,
            "region": "na",
            "marketplace_ids": [marketplace],
            "endpoint": f"{server.url}/amazon",
            "lwa_url": f"{server.url}/amazon/auth/o2/token",
        },
    )
    channel.set_secret("client_secret", client_secret)
    channel.set_secret("refresh_token", refresh_token)
    channel.save()
    return channel
