"""The points ledger: service throughput, its raw-SQL ceiling, and latency vs ledger size.

1. Service throughput — awards/s through ``loyalty.services.points_award`` from N worker
   PROCESSES (not threads: the GIL would measure Python, not the ledger), each with its own
   ``django.setup()`` and connection, each awarding to its own members for a fixed duration.
2. Raw SQL ceiling — the same transaction (lock member, idempotency check, rate, cap sum,
   insert entry, update balance, insert outbox event) hand-written with psycopg, same workers.
3. Latency flatness — p50/p99 of sequential service awards on an empty ledger and again with
   a million entries loaded (with a daily cap set, so the cap query runs every time).

Knobs (environment): BENCH_WORKERS (8), BENCH_DURATION seconds per throughput run (10),
BENCH_LEDGER_ROWS (1000000), BENCH_LATENCY_AWARDS (500).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import secrets
import time
import traceback
from datetime import UTC, datetime
from decimal import ROUND_FLOOR, Decimal

from . import common

WORKERS = int(os.environ.get("BENCH_WORKERS", 8))
DURATION = float(os.environ.get("BENCH_DURATION", 10))
MEMBERS_PER_WORKER = 50
WARMUP = 20  # awards per worker (or latency run) before the clock starts
LEDGER_ROWS = int(os.environ.get("BENCH_LEDGER_ROWS", 1_000_000))
LOADED_MEMBERS = 10_000
LATENCY_AWARDS = int(os.environ.get("BENCH_LATENCY_AWARDS", 500))
LATENCY_MEMBERS = 50
AMOUNT = "12.34"  # × rate 1 × no tier = 12 points per award
DAILY_CAP = 100_000_000  # never reached: the point is that the cap query runs on every award
FLAT_P50_RATIO = 1.5  # loaded/empty p50 above this is reported as NOT flat

SOURCE = "api"


# --- fixtures ------------------------------------------------------------------------------


def _fresh_teams(members: int, prefix: str, teams: int = 1):
    """Empty loyalty tables, then ``teams`` capped teams with a USD rate and ``members``
    members split evenly among them, in team order; returns (first team, member pks by pk)."""
    from loyalty.models import EarningPolicy, Member, Plan, Team

    common.truncate_app_tables("loyalty")
    made = []
    for t in range(teams):
        team = Team.objects.create(
            name=f"Bench brand {t}",
            slug=f"bench-{t}",
            plan=Plan.OMNICHANNEL,
            currency="USD",
            daily_cap=DAILY_CAP,
        )
        EarningPolicy.objects.create(team=team, currency="USD", rate=Decimal("1.0000"))
        made.append(team)
    per_team = members // teams
    Member.objects.bulk_create(
        [
            Member(team=team, email=f"{prefix}{i}@bench.example")
            for team in made
            for i in range(per_team)
        ],
        batch_size=2000,
    )
    pks = list(Member.objects.order_by("pk").values_list("pk", flat=True))
    return made[0], pks


def _analyze(*tables: str) -> None:
    from django.db import connection

    with connection.cursor() as cur:
        for table in tables:
            cur.execute(f"VACUUM ANALYZE {connection.ops.quote_name(table)}")


def _insert_sql(model, known: dict[str, str]) -> tuple[str, str]:
    """Column list and value expressions for a raw INSERT into ``model``'s table.

    ``known`` maps column → SQL expression. Any other column (a field added after this bench
    was written) gets its nullable NULL, its database default, or its Python default as a
    literal — so a schema change does not silently break the bench, and an impossible one
    says which field it needs.
    """
    from django.db import connection
    from django.db.models import NOT_PROVIDED
    from psycopg import sql

    columns = {f.column: f for f in model._meta.concrete_fields}
    unknown = set(known) - set(columns)
    if unknown:
        raise SystemExit(f"bench: {model.__name__} has no column(s) {sorted(unknown)}")
    connection.ensure_connection()
    cols, exprs = [], []
    for column, field in columns.items():
        if column in known:
            expr = known[column]
        elif field.primary_key or field.null or field.db_default is not NOT_PROVIDED:
            continue
        elif field.has_default() and isinstance(field.get_default(), str | int | Decimal):
            value = field.get_db_prep_save(field.get_default(), connection)
            expr = sql.Literal(value).as_string(connection.connection)
        else:
            raise SystemExit(
                f"bench: {model.__name__}.{field.name} is NOT NULL without a default; "
                "tell bench/ledger.py what to write there"
            )
        cols.append(connection.ops.quote_name(column))
        exprs.append(expr)
    return ", ".join(cols), ", ".join(exprs)


def _raw_statements() -> dict[str, str]:
    """The service's transaction as plain SQL (psycopg placeholders), for the raw workers."""
    from loyalty.models import EarningPolicy, LedgerEntry, Member, OutboxEvent, Team

    t = {
        m.__name__: m._meta.db_table
        for m in (Member, Team, LedgerEntry, EarningPolicy, OutboxEvent)
    }
    entry_cols, entry_vals = _insert_sql(
        LedgerEntry,
        {
            "team_id": "%(team)s",
            "public_id": "%(public_id)s",
            "member_id": "%(member)s",
            "points": "%(points)s",
            "kind": "'earn'",
            "source": "%(source)s",
            "description": "''",
            "idempotency_key": "%(key)s",
            "amount": "%(amount)s",
            "currency": "%(currency)s",
            "rate": "%(rate)s",
            "multiplier": "%(multiplier)s",
            "created_at": "%(now)s",
        },
    )
    outbox_cols, outbox_vals = _insert_sql(
        OutboxEvent,
        {
            "team_id": "%(team)s",
            "event_type": "'points.awarded'",
            "payload": "%(payload)s",
            "created_at": "%(now)s",
        },
    )
    return {
        # FOR UPDATE OF m: only the member row is the lock (the team row is just read).
        "lock": f"SELECT m.team_id, m.status, m.balance, m.lifetime_points, t.daily_cap,"
        f" t.currency FROM {t['Member']} m JOIN {t['Team']} t ON t.id = m.team_id"
        " WHERE m.id = %s FOR UPDATE OF m",
        "existing": f"SELECT id FROM {t['LedgerEntry']}"
        " WHERE team_id = %s AND idempotency_key = %s",
        "rate": f"SELECT rate FROM {t['EarningPolicy']} WHERE team_id = %s AND currency = %s",
        "cap": f"SELECT COALESCE(SUM(points), 0) FROM {t['LedgerEntry']}"
        " WHERE member_id = %s AND kind = 'earn' AND created_at >= %s",
        "entry": f"INSERT INTO {t['LedgerEntry']} ({entry_cols}) VALUES ({entry_vals})",
        "balance": f"UPDATE {t['Member']} SET balance = %s, lifetime_points = %s WHERE id = %s",
        "outbox": f"INSERT INTO {t['OutboxEvent']} ({outbox_cols}) VALUES ({outbox_vals})",
    }


# --- workers (separate processes) ----------------------------------------------------------


def _service_worker(url, w, member_pks, duration, ready, start, out):
    try:
        common.setup_django(url)
        from loyalty.models import Member
        from loyalty.services import points_award

        members = list(Member.objects.select_related("team").filter(pk__in=member_pks))

        def award(i, tag):
            result = points_award(
                member=members[i % len(members)],
                key=f"bench:svc:{w}:{tag}{i}",
                source=SOURCE,
                amount=AMOUNT,
            )
            if not (result.created and result.entry and result.entry.points == 12):
                raise AssertionError(f"unexpected award result {result!r}")

        _drive(w, award, duration, ready, start, out)
    except BaseException:
        out.put(("error", w, traceback.format_exc()))


def _raw_worker(url, w, member_pks, duration, statements, ready, start, out):
    try:
        import psycopg
        from psycopg.types.json import Jsonb

        conn = psycopg.connect(common.libpq_url(url), autocommit=True)
        amount = Decimal(AMOUNT)

        def award(i, tag):
            member = member_pks[i % len(member_pks)]
            key = f"bench:raw:{w}:{tag}{i}"
            now = datetime.now(UTC)
            day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(statements["lock"], [member])
                team, status, balance, lifetime, cap, currency = cur.fetchone()
                if status == "blocked":
                    raise AssertionError("blocked member")
                cur.execute(statements["existing"], [team, key])
                if cur.fetchone() is not None:
                    raise AssertionError(f"key {key} used twice")
                cur.execute(statements["rate"], [team, currency])
                (rate,) = cur.fetchone()
                multiplier = Decimal(1)
                points = int((amount * rate * multiplier).to_integral_value(ROUND_FLOOR))
                cur.execute(statements["cap"], [member, day_start])
                (earned,) = cur.fetchone()
                grant = points if cap is None else min(points, max(0, cap - earned))
                public_id = "txn_" + "".join(secrets.choice(_ALPHABET) for _ in range(20))
                cur.execute(
                    statements["entry"],
                    {
                        "team": team,
                        "public_id": public_id,
                        "member": member,
                        "points": grant,
                        "source": SOURCE,
                        "key": key,
                        "amount": amount,
                        "currency": currency,
                        "rate": rate,
                        "multiplier": multiplier,
                        "now": now,
                    },
                )
                balance, lifetime = balance + grant, lifetime + grant
                cur.execute(statements["balance"], [balance, lifetime, member])
                payload = {
                    "transactionId": public_id,
                    "points": grant,
                    "kind": "earn",
                    "source": SOURCE,
                    "balance": balance,
                    "amount": str(amount),
                    "currency": currency,
                    "idempotencyKey": key,
                }
                cur.execute(
                    statements["outbox"], {"team": team, "payload": Jsonb(payload), "now": now}
                )
            if grant != 12:
                raise AssertionError(f"raw award granted {grant}")

        _drive(w, award, duration, ready, start, out)
        conn.close()
    except BaseException:
        out.put(("error", w, traceback.format_exc()))


_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def _drive(w, award, duration, ready, start, out):
    """Warm up, wait for the common start, then award back to back until the time is up."""
    for i in range(WARMUP):
        award(i, "warm")
    ready.put(w)
    start.wait()
    latencies = []
    cpu_began = time.process_time()
    began = time.perf_counter()
    deadline = began + duration
    i = 0
    while True:
        t0 = time.perf_counter()
        award(i, "")
        t1 = time.perf_counter()
        latencies.append(t1 - t0)
        i += 1
        if t1 >= deadline:
            break
    cpu = time.process_time() - cpu_began
    out.put(("done", w, {"awards": i, "seconds": t1 - began, "cpu": cpu, "latencies": latencies}))


def _throughput(kind: str, url: str, target, extra_args=(), teams: int = 1) -> dict:
    """Run ``target`` in WORKERS processes on fresh members; awards/s over the common window.

    With ``teams=1`` every worker awards in the same team (one brand's tills and webhooks at
    once, the realistic case); with ``teams=WORKERS`` each worker has a team of its own.
    """
    _team, pks = _fresh_teams(WORKERS * MEMBERS_PER_WORKER, prefix=f"{kind}-", teams=teams)
    _analyze("loyalty_member", "loyalty_ledgerentry")
    from django.db import connections

    connections.close_all()  # nothing shared with the children

    ctx = mp.get_context("spawn")
    ready, out, start = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = []
    for w in range(WORKERS):
        slice_ = pks[w * MEMBERS_PER_WORKER : (w + 1) * MEMBERS_PER_WORKER]
        args = (url, w, slice_, DURATION, *extra_args, ready, start, out)
        procs.append(ctx.Process(target=target, args=args, name=f"bench-{kind}-{w}", daemon=True))
    for p in procs:
        p.start()

    results, errors = {}, []

    def collect(block_s: float) -> None:
        try:
            status, w, payload = out.get(timeout=block_s)
        except queue.Empty:
            return
        if status == "done":
            results[w] = payload
        else:
            errors.append(payload)

    try:
        waiting, give_up = set(range(WORKERS)), time.monotonic() + 120
        while waiting and not errors:
            try:
                waiting.discard(ready.get(timeout=0.2))
            except queue.Empty:
                collect(0)
                if not errors and (
                    time.monotonic() > give_up or not all(p.is_alive() for p in procs)
                ):
                    collect(2)  # a dead worker's traceback, if it sent one
                    if not errors:
                        errors.append(f"{kind}: a worker died or never got ready")
        if not errors:
            watcher = _LockWatcher(url)
            start.set()
            give_up = time.monotonic() + DURATION + 60
            while len(results) + len(errors) < WORKERS and time.monotonic() < give_up:
                collect(0.1)
                watcher.sample()
            watcher.close()
    finally:
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
    if errors or len(results) < WORKERS:
        return {"error": errors[0] if errors else f"{kind}: only {len(results)} workers reported"}

    awards = sum(r["awards"] for r in results.values())
    seconds = max(r["seconds"] for r in results.values())
    latencies = [x for r in results.values() for x in r["latencies"]]
    return {
        "workers": WORKERS,
        "teams": teams,
        "members_per_worker": MEMBERS_PER_WORKER,
        "awards": awards,
        "seconds": round(seconds, 3),
        "awards_per_s": round(awards / seconds, 1),
        "latency_under_load": common.percentiles(latencies),
        # Python-side CPU per award in the workers: robust to a busy machine, unlike awards/s
        "client_cpu_ms_per_award": round(
            sum(r["cpu"] for r in results.values()) / awards * 1000, 2
        ),
        # share of the workers' time spent queued on a lock in PostgreSQL (sampled every 0.1 s)
        "lock_wait_share": watcher.share(WORKERS),
        "consistency": _consistency(expected_entries=awards + WORKERS * WARMUP),
    }


class _LockWatcher:
    """Samples how many sessions of the bench database are waiting on a lock.

    Throughput alone cannot tell "slow" from "queued": a high share here means awards are
    being serialized by a lock, not slowed by CPU or I/O.
    """

    SQL = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"
    )

    def __init__(self, url: str):
        import psycopg

        self.conn = psycopg.connect(common.libpq_url(url), autocommit=True)
        self.samples: list[int] = []

    def sample(self) -> None:
        self.samples.append(self.conn.execute(self.SQL).fetchone()[0])

    def share(self, workers: int) -> float | None:
        if not self.samples:
            return None
        return round(sum(self.samples) / len(self.samples) / workers, 3)

    def close(self) -> None:
        self.conn.close()


def _consistency(expected_entries: int) -> dict:
    """Every award wrote one entry and one event, and every balance equals its entries."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM loyalty_ledgerentry")
        (entries,) = cur.fetchone()
        cur.execute("SELECT count(*) FROM loyalty_outboxevent WHERE event_type = 'points.awarded'")
        (events,) = cur.fetchone()
        cur.execute(
            "SELECT count(*) FROM loyalty_member m LEFT JOIN (SELECT member_id, SUM(points) s"
            " FROM loyalty_ledgerentry GROUP BY member_id) e ON e.member_id = m.id"
            " WHERE m.balance <> COALESCE(e.s, 0)"
        )
        (drift,) = cur.fetchone()
    ok = entries == expected_entries == events and drift == 0
    return {"ok": ok, "entries": entries, "events": events, "balances_off": drift}


# --- latency -------------------------------------------------------------------------------


def _latency(members, tag: str) -> dict:
    from loyalty.services import points_award

    def award(i):
        return points_award(
            member=members[i % len(members)],
            key=f"bench:lat:{tag}:{i}",
            source=SOURCE,
            amount=AMOUNT,
        )

    for i in range(WARMUP):
        award(-1 - i)
    samples = []
    for i in range(LATENCY_AWARDS):
        t0 = time.perf_counter()
        result = award(i)
        samples.append(time.perf_counter() - t0)
        if not (result.created and result.entry and result.entry.points == 12):
            raise AssertionError(f"unexpected award result {result!r}")
    return common.percentiles(samples)


def _bulk_load(team, rows: int) -> float:
    """``rows`` earned entries over every member and the last 90 days, in one statement."""
    from django.db import connection, transaction

    from loyalty.models import LedgerEntry

    cols, exprs = _insert_sql(
        LedgerEntry,
        {
            "team_id": "%(team)s",
            "public_id": "'txn_b' || lpad(g::text, 19, '0')",
            "member_id": "ms.ids[1 + g %% ms.n]",
            "points": "1 + g %% 100",
            "kind": "'earn'",
            "source": "'store'",
            "description": "'bench bulk load'",
            "idempotency_key": "'bench:bulk:' || g",
            "amount": "(1 + g %% 100)::numeric(14, 2)",
            "currency": "'USD'",
            "rate": "1",
            "multiplier": "1",
            # spread over the last 90 days, a little of it today (so the cap sums it)
            "created_at": "now() - ((g::bigint * 7919) %% 7776000) * interval '1 second'",
        },
    )
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL synchronous_commit = off")
        cur.execute(
            "WITH ms AS (SELECT array_agg(id ORDER BY id) AS ids, count(*)::int AS n"
            "  FROM loyalty_member WHERE team_id = %(team)s)"
            f" INSERT INTO loyalty_ledgerentry ({cols})"
            f" SELECT {exprs} FROM ms CROSS JOIN generate_series(1, %(rows)s) AS g",
            {"team": team.pk, "rows": rows},
        )
        # Balances stay equal to the sum of their entries, as everywhere else.
        cur.execute(
            "UPDATE loyalty_member m SET balance = m.balance + e.s,"
            " lifetime_points = m.lifetime_points + e.s"
            " FROM (SELECT member_id, SUM(points) AS s FROM loyalty_ledgerentry"
            "  WHERE idempotency_key LIKE 'bench:bulk:%%' GROUP BY member_id) e"
            " WHERE e.member_id = m.id"
        )
    _analyze("loyalty_ledgerentry", "loyalty_member")
    with connection.cursor() as cur:
        cur.execute("CHECKPOINT")  # flush the load now, not during the measured awards
    return time.perf_counter() - started


def _queries_per_award(member) -> int:
    """SQL statements one service award sends (BEGIN/COMMIT not counted)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from loyalty.services import points_award

    with CaptureQueriesContext(connection) as captured:
        points_award(member=member, key="bench:count", source=SOURCE, amount=AMOUNT)
    return len(captured.captured_queries)


# --- the benchmark -------------------------------------------------------------------------


def run() -> dict:
    url = common.prepare()
    from loyalty.models import Member

    began = time.perf_counter()
    environment = common.environment()
    statements = _raw_statements()
    print(
        f"ledger: throughput, {WORKERS} processes × {DURATION:g} s, "
        f"{MEMBERS_PER_WORKER} members each …",
        flush=True,
    )
    service = _throughput("service", url, _service_worker)
    raw = _throughput("raw", url, _raw_worker, extra_args=(statements,))
    # Diagnostic: the same service with a team per worker. Team-wide serialization (a lock
    # every award of a team queues on) shows as lock wait in the first row and not here.
    service_teams = _throughput("service", url, _service_worker, teams=WORKERS)
    ratio = (
        round(service["awards_per_s"] / raw["awards_per_s"], 3)
        if "error" not in service and "error" not in raw
        else None
    )

    print(f"ledger: latency, {LATENCY_AWARDS} sequential awards, empty ledger …", flush=True)
    team, pks = _fresh_teams(LOADED_MEMBERS, prefix="m")
    _analyze("loyalty_member", "loyalty_ledgerentry")
    step = LOADED_MEMBERS // LATENCY_MEMBERS
    members = list(Member.objects.select_related("team").filter(pk__in=pks[::step]))
    queries = _queries_per_award(members[0])
    empty = _latency(members, "empty")
    print(f"ledger: loading {LEDGER_ROWS:,} entries over {LOADED_MEMBERS:,} members …", flush=True)
    load_s = _bulk_load(team, LEDGER_ROWS)
    loaded = _latency(members, "loaded")
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM loyalty_ledgerentry")
        (rows_now,) = cur.fetchone()
    p50_ratio = round(loaded["p50_ms"] / empty["p50_ms"], 3)
    p99_ratio = round(loaded["p99_ms"] / empty["p99_ms"], 3)

    return {
        "bench": "ledger",
        "environment": environment,
        "params": {
            "workers": WORKERS,
            "duration_s": DURATION,
            "members_per_worker": MEMBERS_PER_WORKER,
            "warmup_awards": WARMUP,
            "amount": AMOUNT,
            "daily_cap": DAILY_CAP,
            "latency_awards": LATENCY_AWARDS,
            "latency_members": len(members),
            "ledger_rows_loaded": LEDGER_ROWS,
            "loaded_members": LOADED_MEMBERS,
        },
        "throughput": {
            "service": service,
            "raw_sql": raw,
            "service_over_raw": ratio,
            "service_team_per_worker": service_teams,
        },
        "statements_per_award": {"service": queries, "raw_sql": len(statements)},
        "latency": {
            "empty": empty,
            "loaded": loaded,
            "ledger_rows": rows_now,
            "load_seconds": round(load_s, 1),
            "p50_ratio": p50_ratio,
            "p99_ratio": p99_ratio,
            "flat": p50_ratio <= FLAT_P50_RATIO,
        },
        "total_seconds": round(time.perf_counter() - began, 1),
    }


def failed(result: dict) -> list[str]:
    """What went wrong in a result, if anything (the run exits non-zero on any)."""
    problems = []
    for name in ("service", "raw_sql", "service_team_per_worker"):
        part = result["throughput"][name]
        if "error" in part:
            problems.append(f"{name}: {part['error']}")
        elif not part["consistency"]["ok"]:
            problems.append(f"{name}: ledger inconsistent {part['consistency']}")
    return problems


def render(result: dict) -> None:
    tp, lat = result["throughput"], result["latency"]
    p = result["params"]
    rows = []
    for label, part in (
        ("service   points_award, one team", tp["service"]),
        ("raw SQL   same transaction, one team", tp["raw_sql"]),
        ("service   a team per worker (diagnostic)", tp["service_team_per_worker"]),
    ):
        if "error" in part:
            rows.append([label, "ERROR", "", "", "", "", "", ""])
            continue
        under = part["latency_under_load"]
        rows.append(
            [
                label,
                f"{part['awards_per_s']:,.0f}",
                f"{part['awards']:,}",
                f"{part['seconds']:.1f}",
                f"{under['p50_ms']:.2f}",
                f"{under['p99_ms']:.2f}",
                f"{part['lock_wait_share']:.0%}",
                f"{part['client_cpu_ms_per_award']:.2f}",
            ]
        )
    common.print_table(
        f"Ledger throughput — {p['workers']} processes, {p['members_per_worker']} members each,"
        f" amount {p['amount']}, daily cap on",
        ["path", "awards/s", "awards", "s", "p50 ms", "p99 ms", "lock wait", "cpu ms"],
        rows,
    )
    if tp["service_over_raw"] is not None:
        st = result["statements_per_award"]
        print(
            f"service / raw = {tp['service_over_raw']:.2f}"
            f"   (SQL statements per award: service {st['service']}, raw {st['raw_sql']})"
        )
        print(
            "p50/p99 = award latency under load; lock wait = share of workers queued on a"
            " PostgreSQL lock; cpu ms = Python CPU per award in the workers"
        )
    e, lo = lat["empty"], lat["loaded"]
    common.print_table(
        f"Award latency — {p['latency_awards']} sequential service awards,"
        f" {p['latency_members']} members, daily cap on",
        ["ledger", "rows", "p50 ms", "p90 ms", "p99 ms", "max ms"],
        [
            ["empty", "0", e["p50_ms"], e["p90_ms"], e["p99_ms"], e["max_ms"]],
            [
                "loaded",
                f"{lat['ledger_rows']:,}",
                lo["p50_ms"],
                lo["p90_ms"],
                lo["p99_ms"],
                lo["max_ms"],
            ],
        ],
    )
    verdict = "flat" if lat["flat"] else f"NOT FLAT (p50 ratio above {FLAT_P50_RATIO})"
    print(
        f"loaded / empty: p50 ×{lat['p50_ratio']:.2f}, p99 ×{lat['p99_ratio']:.2f} — {verdict}"
        f"   (bulk load {lat['load_seconds']:.1f} s)"
    )
    print(f"ledger bench: {result['total_seconds']:.0f} s")
