"""The refund claw-back job: one pass over 100 000 awarded Amazon orders of which 1% changed
after approval, against the emulator at Amazon's real usage plans; calls follow the changes.

The marketplace emulator runs in this process on a loopback port with its REAL usage plans, per
seller (its defaults): searchOrders 0.0056/s burst 20, listFinancialEvents 0.5/s burst 30.
Pacing is ours with its default limits (burst less two tokens of headroom: 18 searchOrders
pages at once), in Redis (the shared Lua script, BENCH_CLAWBACK_REDIS_URL, keys under a prefix
of this run's own, deleted afterwards) or in-process when Redis does not answer.

Setup (not timed): one team, one Amazon channel (LWA app credentials sealed in it) pointed at
the emulator, ORDERS shipped orders in the emulator bought 3–30 days ago, and in the database
as many awarded claims — VerifiedOrder, earn LedgerEntry ``amazon-order:<id>`` (amount, points
at rate 1), Claim AWARDED, its ClaimTransition trail submitted → … → awarded a day after the
purchase — over MEMBERS members whose balances equal their ledger (bulk_create in batches;
the four-step trail of each claim in one INSERT … SELECT from the claims). About 70 s.

Then, per scenario:
1. cold — the channel's first pass ever, under the real plans: a window from the earliest
   awarded purchase holds every order updated since (all ORDERS), so it is paced after 18
   pages; reported with what the rest would take at the sustained rate, not waited for. The
   orders cursor is then moved on as finishing that window would leave it (watermark = its end).
2. warm-up — one ordinary pass (steady state: the cursors exist, the watermark is after the
   awards).
3. CHANGED_PCT of the orders change in the emulator, spread over them: half refunded (a third
   partly once, a third partly twice — 30% then the rest —, a third whole), half cancelled.
   Both sides' buckets start full (as after a quiet hour: searchOrders takes 54 min to refill).
4. timed — one ``clawback.run_pass()``: wall time, the platform calls per operation (getOrder
   must be 0), 429s (must be 0), pages, changes read, reversals (must be one per refund event
   plus one per cancellation), outcome per feed, SQL queries; time inside the connector's calls
   and inside ``_apply`` (the database work on each page).
5. second — another pass right after, buckets as the timed pass left them: 0 reversals. Its
   window re-reads CLAWBACK_OVERLAP_SECONDS (60) of the last one — here all the changes,
   made seconds earlier — as far as the searchOrders tokens left allow. A window left open is
   reported with how far back it starts, the pages it holds and what reading them takes at the
   sustained rate.
6. late awards (main scenario only, LATE_AWARDS > 0) — open windows are closed as in 1, then
   LATE_AWARDS orders bought 14 days ago are awarded through the services (as a reviewer's
   approval does), buckets full; one pass. The job reaches its refunds window back to those
   purchases (a refund posted before the award must still be read) and its orders window back
   to their verification.
7. ``loyalty.selectors.ledger_mismatches()`` (what ``check_ledger`` runs) must be empty.

Run twice: CHANGED_PCT (the main one) and CONTROL_PCT (the same pass with a tenth of the
changes: calls scale with the changes, not with the ORDERS awarded orders).

CLAWBACK_SETTLE_SECONDS is -2 here, as in the tests: windows end two seconds ahead of now, so
changes made just before a pass are inside it. Amazon's connector refuses a window ending less
than two minutes ago unless the emulator publishes at once; its ``search_lag_seconds`` stays 0
(its default), so the emulator serves everything posted so far. With a negative settle the
job does not look up awards made in the first 2 s after a window opened (with the production
150 s it does), hence the pause before the late awards.

Knobs (environment): BENCH_CLAWBACK_ORDERS (100000), BENCH_CLAWBACK_CHANGED_PCT (1),
BENCH_CLAWBACK_CONTROL_PCT (0.1; 0 skips the control), BENCH_CLAWBACK_MEMBERS (10000),
BENCH_CLAWBACK_LATE_AWARDS (10; 0 skips), BENCH_CLAWBACK_REDIS_URL (redis://127.0.0.1:6379/5).
"""

from __future__ import annotations

import math
import os
import random
import threading
import time
import traceback
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from unittest import mock

from . import common, ledger

ORDERS = int(os.environ.get("BENCH_CLAWBACK_ORDERS", 100_000))
CHANGED_PCT = float(os.environ.get("BENCH_CLAWBACK_CHANGED_PCT", 1))
CONTROL_PCT = float(os.environ.get("BENCH_CLAWBACK_CONTROL_PCT", 0.1))
MEMBERS = int(os.environ.get("BENCH_CLAWBACK_MEMBERS", 10_000))
LATE_AWARDS = int(os.environ.get("BENCH_CLAWBACK_LATE_AWARDS", 10))
REDIS_URL = os.environ.get("BENCH_CLAWBACK_REDIS_URL", "redis://127.0.0.1:6379/5")
SETTLE_S = -2  # as the tests: windows end 2 s ahead of now (the emulator publishes at once)
# Amazon's published usage plans, the emulator's defaults: (requests per second, burst)
PLANS = {"searchOrders": (0.0056, 20), "listFinancialEvents": (0.5, 30)}
OPERATIONS = ("searchOrders", "listFinancialEvents", "getOrder", "getOrderV0", "lwaToken")
PAGE = 100  # what searchOrders and listFinancialEvents serve per page
BEAT_INTERVAL_S = 15 * 60  # CLAWBACK_INTERVAL_SECONDS' default: a pass every 15 minutes
BATCH = 5000
SEED = 20260101
CLIENT_ID = "amzn1.application-oa2-client.bench0000000000000000000000000001"
CLIENT_SECRET = "amzn1.oa2-cs.v1.bench" + "fedcba9876543210" * 3
REFRESH_TOKEN = "Atzr|bench-clawback-refresh"
SELLER = "ABENCHCLAWBACK"
MARKETPLACE = "ATVPDKIKX0DER"
DAY = 86400


# --- setup -----------------------------------------------------------------------------------


def _order_id(i: int) -> str:
    return f"{100 + i % 900:03d}-{i:07d}-{i * 7919 % 10_000_000:07d}"


def _total(i: int) -> Decimal:
    return Decimal(20 + i % 180) + Decimal("0.99")


def _setup(sandbox, server) -> tuple:
    """Team, channel, ORDERS orders in the emulator and as awarded claims; returns
    (team, channel, {order id: total}, seconds)."""
    from django.db import connection, transaction

    from claims.models import Claim, ClaimStatus, ClaimTransition, VerifiedOrder
    from claims.services import award_key
    from loyalty.models import EarningPolicy, EntryKind, LedgerEntry, Member, Plan, Team, Tier

    S = ClaimStatus
    started = time.perf_counter()
    common.truncate_app_tables("claims", "loyalty", "channels_app")
    team = Team.objects.create(name="Bench claw-back", slug="bench-clawback", plan=Plan.OMNICHANNEL)
    tier = Tier.objects.create(team=team, name="Member", threshold=0, multiplier=Decimal("1"))
    EarningPolicy.objects.create(team=team, currency="USD", rate=Decimal("1.0000"))
    channel = common.amazon_channel(
        team,
        server,
        name="Amazon",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        refresh_token=REFRESH_TOKEN,
        marketplace=MARKETPLACE,
    )

    sandbox.amazon.add_app(CLIENT_ID, CLIENT_SECRET)
    sandbox.amazon.add_seller(
        seller_id=SELLER,
        name="Bench seller",
        store_name="Bench store",
        client_id=CLIENT_ID,
        refresh_token=REFRESH_TOKEN,
        marketplace_ids=[MARKETPLACE],
    )
    now = time.time()
    bought = {}
    for i in range(ORDERS):
        created = now - (3 + i % 27) * DAY - (i * 37) % DAY  # 3 to 30 days ago
        order = sandbox.amazon.add_order(
            seller_id=SELLER,
            order_id=_order_id(i),
            created=created,
            status="SHIPPED",
            total=_total(i),
        )
        bought[order.order_id] = (created, order.total)

    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute("SET LOCAL synchronous_commit = off")
        Member.objects.bulk_create(
            [
                Member(
                    team=team,
                    public_id=f"mem_c{i:019d}",
                    email=f"clawback{i}@bench.example",
                    tier=tier,
                )
                for i in range(MEMBERS)
            ],
            batch_size=BATCH,
        )
        member_ids = list(
            Member.objects.filter(team=team).order_by("pk").values_list("pk", flat=True)
        )
        ids = list(bought)
        entries = LedgerEntry.objects.bulk_create(
            [
                LedgerEntry(
                    team=team,
                    public_id=f"txn_c{i:019d}",
                    member_id=member_ids[i % len(member_ids)],
                    points=int(bought[oid][1]),
                    kind=EntryKind.EARN,
                    source="amazon",
                    description=f"Amazon order {oid}",
                    idempotency_key=award_key("amazon", oid),
                    amount=bought[oid][1],
                    currency="USD",
                    rate=Decimal("1"),
                    multiplier=Decimal("1"),
                )
                for i, oid in enumerate(ids)
            ],
            batch_size=BATCH,
        )
        orders = VerifiedOrder.objects.bulk_create(
            [
                VerifiedOrder(
                    team=team,
                    channel=channel,
                    order_id=oid,
                    marketplace=MARKETPLACE,
                    status="SHIPPED",
                    purchased_at=datetime.fromtimestamp(bought[oid][0], UTC),
                    total=bought[oid][1],
                    currency="USD",
                    item_count=1,
                    buyer_match="unavailable",
                )
                for oid in ids
            ],
            batch_size=BATCH,
        )
        Claim.objects.bulk_create(
            [
                Claim(
                    team=team,
                    public_id=f"clm_c{i:019d}",
                    member_id=entry.member_id,
                    channel=channel,
                    order_number=order.order_id,
                    status=S.AWARDED,
                    status_reason=f"+{entry.points} points",
                    verified_order=order,
                    points_preview=entry.points,
                    points_awarded=entry.points,
                    ledger_entry=entry,
                    attempts=1,
                )
                for i, (entry, order) in enumerate(zip(entries, orders, strict=True))
            ],
            batch_size=BATCH,
        )
        with connection.cursor() as cur:
            # Claimed and awarded a day after the purchase, not all of it this second.
            cur.execute(
                "UPDATE claims_claim c SET created_at = o.purchased_at + interval '1 day'"
                " FROM claims_verifiedorder o WHERE o.id = c.verified_order_id AND c.team_id = %s",
                [team.pk],
            )
            # Each claim's trail submitted → verifying → pending review → approved → awarded,
            # a minute apart (derived from the claims in one statement: 4 rows a claim).
            cols, exprs = ledger._insert_sql(
                ClaimTransition,
                {
                    "claim_id": "c.id",
                    "from_status": "t.a",
                    "to_status": "t.b",
                    "reason": "'bench'",
                    "created_at": "c.created_at + t.k * interval '1 minute'",
                },
            )
            steps = ", ".join(
                f"('{a.value}', '{b.value}', {k})"
                for k, (a, b) in enumerate(
                    [
                        (S.SUBMITTED, S.VERIFYING),
                        (S.VERIFYING, S.PENDING_REVIEW),
                        (S.PENDING_REVIEW, S.APPROVED),
                        (S.APPROVED, S.AWARDED),
                    ]
                )
            )
            cur.execute(
                f"INSERT INTO claims_claimtransition ({cols}) SELECT {exprs}"
                f" FROM claims_claim c CROSS JOIN (VALUES {steps}) AS t(a, b, k)"
                " WHERE c.team_id = %s ORDER BY c.id, t.k",
                [team.pk],
            )
            cur.execute(
                "UPDATE loyalty_ledgerentry e SET created_at = c.created_at + interval '3 minute'"
                " FROM claims_claim c WHERE c.ledger_entry_id = e.id AND c.team_id = %s",
                [team.pk],
            )
            # Balances equal the sum of their entries, as everywhere else.
            cur.execute(
                "UPDATE loyalty_member m SET balance = e.s, lifetime_points = e.s"
                " FROM (SELECT member_id, SUM(points) AS s FROM loyalty_ledgerentry"
                "  WHERE team_id = %s GROUP BY member_id) e WHERE e.member_id = m.id",
                [team.pk],
            )
    ledger._analyze(
        "loyalty_member",
        "loyalty_ledgerentry",
        "claims_verifiedorder",
        "claims_claim",
        "claims_claimtransition",
    )
    return team, channel, {oid: bought[oid][1] for oid in ids}, time.perf_counter() - started


# --- pacing state on both sides ----------------------------------------------------------------


class _Buckets:
    """Our pacing buckets (Redis under a prefix of our own, or in-process) and the emulator's."""

    def __init__(self, sandbox, use_redis: bool):
        self.sandbox, self.use_redis = sandbox, use_redis
        self.prefix = f"bench-clawback-{os.getpid()}-{int(time.time())}"

    def fill(self) -> None:
        """Both sides full, as after a quiet hour."""
        from claims import pacing

        pacing.reset()
        if self.use_redis:
            client = common.redis_client(REDIS_URL)
            keys = list(client.scan_iter(match=f"{self.prefix}:*"))
            if keys:
                client.delete(*keys)
        for operation, (rate, burst) in PLANS.items():
            self.sandbox.set_rate_limit(operation, rate, burst)


# --- one pass, measured ---------------------------------------------------------------------


class _Timer:
    """Seconds spent inside wrapped functions (the connector's page reads, ``_apply``)."""

    def __init__(self):
        self.seconds: Counter[str] = Counter()
        self.count: Counter[str] = Counter()
        self._lock = threading.Lock()

    def wrap(self, name: str, fn):
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                with self._lock:
                    self.seconds[name] += time.perf_counter() - t0
                    self.count[name] += 1

        return timed


class _Queries:
    """Every SQL statement the pass runs (``connection.execute_wrapper``): count, time, and the
    statements that took the most time, by their text (parameters apart)."""

    def __init__(self):
        self.count, self.seconds = 0, 0.0
        self.by_text: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()

    def __call__(self, execute, sql, params, many, context):
        t0 = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            took = time.perf_counter() - t0
            self.count += 1
            self.seconds += took
            self.by_text[sql] += took
            self.calls[sql] += 1

    def top(self, n: int = 5) -> list[dict]:
        return [
            {"sql": sql[:240], "calls": self.calls[sql], "seconds": round(took, 3)}
            for sql, took in self.by_text.most_common(n)
        ]


def _pass(sandbox, team, channel, label: str) -> dict:
    from django.db import connection

    from channels_app.connectors.amazon import AmazonConnector
    from claims import clawback

    sandbox.reset_calls()
    timer, queries = _Timer(), _Queries()
    patches = [
        mock.patch.object(
            AmazonConnector,
            name,
            timer.wrap(name, getattr(AmazonConnector, name)),
        )
        for name in ("order_changes", "refund_changes")
    ] + [mock.patch.object(clawback, "_apply", timer.wrap("_apply", clawback._apply))]
    for p in patches:
        p.start()
    try:
        with connection.execute_wrapper(queries):
            t0 = time.perf_counter()
            reports = clawback.run_pass(team=team)
            wall = time.perf_counter() - t0
    finally:
        for p in reversed(patches):
            p.stop()
    feeds = {
        r.stream: {
            "outcome": r.outcome,
            "pages": r.pages,
            "changes": r.items,
            "reversals": r.reversals,
            "retry_in_s": None if r.retry_in is None else round(r.retry_in, 1),
            "message": r.message,
        }
        for r in reports
    }
    calls = {op: sandbox.call_count("amazon", op) for op in OPERATIONS}
    throttled = sum(sandbox.meter.throttled.values())
    result = {
        "pass": label,
        "wall_s": round(wall, 3),
        "calls": calls,
        "throttled_429": throttled,
        "feeds": feeds,
        "reversals": sum(r.reversals for r in reports),
        "queries": queries.count,
        "sql_s": round(queries.seconds, 3),
        "connector_s": round(timer.seconds["order_changes"] + timer.seconds["refund_changes"], 3),
        "apply_s": round(timer.seconds["_apply"], 3),
        "slowest_sql": queries.top(),
    }
    # A window left open (paced): the searchOrders pages it holds, what the rest would take.
    window = _open_window(sandbox, channel)
    if window is not None:
        result["orders_window"] = {
            "since_hours_ago": window["since_hours_ago"],
            **_sustained(window["pages"], feeds["orders"]["pages"]),
        }
    return result


def _sustained(pages: int, used: int) -> dict:
    """What reading ``pages`` searchOrders pages takes once ``used`` came from the burst."""
    rate = PLANS["searchOrders"][0]
    left = max(0, pages - used)
    per_pass = rate * BEAT_INTERVAL_S
    return {
        "pages": pages,
        "pages_left": left,
        "minutes_left": round(left / rate / 60, 1),
        "passes_left_at_beat": math.ceil(left / per_pass) if left else 0,
    }


def _open_window(sandbox, channel) -> dict | None:
    """The orders cursor's open window (None when none is): how far back it starts and the
    searchOrders pages it holds (the emulator's orders updated inside it, 100 a page)."""
    from claims.models import ClawbackCursor

    cursor = ClawbackCursor.objects.get(channel=channel, stream="orders")
    if cursor.window_since is None:
        return None
    since, until = cursor.window_since.timestamp(), cursor.window_until.timestamp()
    with sandbox.lock:
        n = sum(1 for o in sandbox.amazon.orders.values() if since <= o.updated <= until)
    return {"since_hours_ago": round((time.time() - since) / 3600, 1), "pages": math.ceil(n / PAGE)}


def _close_windows(channel) -> None:
    """Move the cursors on as reading the rest of their open windows would leave them (the
    bench does not wait the hours that takes at searchOrders' sustained rate)."""
    from claims.models import ClawbackCursor

    for cursor in ClawbackCursor.objects.filter(channel=channel, window_until__isnull=False):
        ClawbackCursor.objects.filter(pk=cursor.pk).update(
            watermark=cursor.window_until, window_since=None, window_until=None, page_token=""
        )


# --- the changes ------------------------------------------------------------------------------


def _change(sandbox, totals: dict, pct: float) -> dict:
    """Refund or cancel ``pct`` % of the orders in the emulator; what the job should reverse."""
    rng = random.Random(SEED)
    changed = rng.sample(sorted(totals), round(len(totals) * pct / 100))
    refunded, cancelled = changed[: len(changed) // 2], changed[len(changed) // 2 :]
    events = 0
    for n, oid in enumerate(refunded):
        total = totals[oid]
        if n % 3 == 0:  # partly, once
            sandbox.refund_order("amazon", oid, (total / 4).quantize(Decimal("0.01")))
            events += 1
        elif n % 3 == 1:  # partly twice: 30%, then the rest
            sandbox.refund_order("amazon", oid, (total * Decimal("0.3")).quantize(Decimal("0.01")))
            sandbox.refund_order("amazon", oid)
            events += 2
        else:  # whole
            sandbox.refund_order("amazon", oid)
            events += 1
    for oid in cancelled:
        sandbox.cancel_order("amazon", oid)
    return {
        "changed_orders": len(changed),
        "refunded_orders": len(refunded),
        "refund_events": events,
        "cancelled_orders": len(cancelled),
        "expected_reversals": events + len(cancelled),
    }


def _late_awards(sandbox, channel, count: int) -> None:
    """``count`` orders bought 14 days ago, claimed and awarded now through the services."""

    from claims import services
    from claims.models import Claim, ClaimStatus, VerifiedOrder
    from loyalty import services as loyalty_services
    from loyalty.models import Member

    members = list(Member.objects.filter(team=channel.team).order_by("pk")[:count])
    bought = time.time() - 14 * DAY
    for n in range(count):
        i = ORDERS + n
        order = sandbox.amazon.add_order(
            seller_id=SELLER,
            order_id=_order_id(i),
            created=bought,
            status="SHIPPED",
            total=_total(i),
        )
        verified = VerifiedOrder.objects.create(
            team=channel.team,
            channel=channel,
            order_id=order.order_id,
            marketplace=MARKETPLACE,
            status="SHIPPED",
            purchased_at=datetime.fromtimestamp(bought, UTC),
            total=order.total,
            currency="USD",
            item_count=1,
            buyer_match="unavailable",
        )
        claim = Claim.objects.create(
            team=channel.team,
            member=members[n % len(members)],
            channel=channel,
            order_number=order.order_id,
            status=ClaimStatus.PENDING_REVIEW,
            verified_order=verified,
        )
        result = loyalty_services.points_award(
            member=claim.member,
            key=services.award_key("amazon", order.order_id),
            source="amazon",
            amount=order.total,
            currency="USD",
        )
        services.claim_transition(claim=claim, to=ClaimStatus.APPROVED, reason="approved")
        services.claim_transition(
            claim=claim,
            to=ClaimStatus.AWARDED,
            reason=f"+{result.points} points",
            points_awarded=result.points,
            ledger_entry=result.entry,
        )


# --- a scenario ---------------------------------------------------------------------------------


def _scenario(pct: float, *, use_redis: bool, late: int) -> dict:
    from django.test import override_settings
    from django.utils import timezone

    from channels_app.connectors import amazon as amazon_adapter
    from channels_app.sandbox import Sandbox, SandboxServer
    from claims import pacing
    from claims.models import ClaimStatus, ClaimTransition
    from loyalty.selectors import ledger_mismatches

    sandbox = Sandbox()
    for operation, plan in PLANS.items():
        if sandbox.amazon.limits[operation] != plan:
            raise RuntimeError(
                f"the emulator's {operation} plan is {sandbox.amazon.limits[operation]}, not {plan}"
            )
    if sandbox.amazon.search_lag_seconds != 0:
        raise RuntimeError("the emulator's search lag is not 0")
    server = SandboxServer(sandbox).start()
    buckets = _Buckets(sandbox, use_redis)
    amazon_adapter.clear_token_cache()
    pacing.reset()
    pacing._redis = None
    overrides = override_settings(
        REDIS_URL=REDIS_URL if use_redis else "",
        PACING_KEY_PREFIX=buckets.prefix,
        CLAWBACK_SETTLE_SECONDS=SETTLE_S,
    )
    overrides.enable()
    try:
        print(f"clawback: setting up {ORDERS:,} awarded orders …", flush=True)
        team, channel, totals, setup_s = _setup(sandbox, server)
        passes = []

        # 1. The channel's first pass ever: its window reaches back to the earliest purchase.
        buckets.fill()
        passes.append(_pass(sandbox, team, channel, "cold (first ever)"))
        _close_windows(channel)

        # 2. Warm-up: the steady state.
        buckets.fill()
        passes.append(_pass(sandbox, team, channel, "warm-up"))

        # 3. The changes; 4. the timed pass; 5. the one right after.
        changes = _change(sandbox, totals, pct)
        buckets.fill()
        print(
            f"clawback: {pct:g}% changed ({changes['changed_orders']:,} orders), timed pass …",
            flush=True,
        )
        timed = _pass(sandbox, team, channel, "timed")
        timed["searchOrders_estimate"] = _sustained(
            math.ceil(changes["changed_orders"] / PAGE), timed["calls"]["searchOrders"]
        )
        passes.append(timed)
        # A partial refund leaves its claim awarded: a transition awarded → awarded.
        changes["awarded_to_awarded"] = ClaimTransition.objects.filter(
            claim__channel=channel, from_status=ClaimStatus.AWARDED, to_status=ClaimStatus.AWARDED
        ).count()
        passes.append(_pass(sandbox, team, channel, "second, right after"))

        # 6. Awards of old orders after the last pass (any window it left open closed first,
        # so that only these awards can widen the next one).
        if late:
            _close_windows(channel)
            # The job looks for awards since the last window opened, less the settle time: with
            # a settle of -2 s an award in the 2 s after it would be missed (not so with the
            # production settle of 150 s), so the reviewer approves a moment later.
            time.sleep(abs(SETTLE_S) + 0.5)
            _late_awards(sandbox, channel, late)
            buckets.fill()
            passes.append(_pass(sandbox, team, channel, f"after {late} late awards"))

        mismatches = ledger_mismatches(team_slug=team.slug)
        return {
            "changed_pct": pct,
            "orders": ORDERS,
            "members": MEMBERS,
            "setup_s": round(setup_s, 1),
            **changes,
            "passes": passes,
            "ledger_mismatches": len(mismatches),
            "ledger_mismatch_sample": mismatches[:3],
            "at": timezone.now().isoformat(timespec="seconds"),
        }
    finally:
        overrides.disable()
        if use_redis:
            client = common.redis_client(REDIS_URL)
            keys = list(client.scan_iter(match=f"{buckets.prefix}:*"))
            if keys:
                client.delete(*keys)
        pacing.reset()
        pacing._redis = None
        server.stop()
        amazon_adapter.clear_token_cache()


# --- the bench ----------------------------------------------------------------------------------


def run() -> dict:
    common.prepare()
    began = time.perf_counter()
    environment = common.environment()
    use_redis = common.redis_answers(REDIS_URL)
    scenarios = []
    for pct, late in ((CHANGED_PCT, LATE_AWARDS), (CONTROL_PCT, 0)):
        if pct <= 0:
            continue
        try:
            scenarios.append(_scenario(pct, use_redis=use_redis, late=late))
        except Exception:
            scenarios.append({"changed_pct": pct, "error": traceback.format_exc()})
    common.truncate_app_tables("claims", "loyalty", "channels_app")
    return {
        "bench": "clawback",
        "environment": environment,
        "loadavg_1m_end": round(os.getloadavg()[0], 2),
        "params": {
            "orders": ORDERS,
            "members": MEMBERS,
            "changed_pct": CHANGED_PCT,
            "control_pct": CONTROL_PCT,
            "late_awards": LATE_AWARDS,
            "emulator_plans": {op: {"rate_per_s": r, "burst": b} for op, (r, b) in PLANS.items()},
            "pacing": f"redis ({REDIS_URL})" if use_redis else "in-process",
            "settle_seconds": SETTLE_S,
            "beat_interval_s": BEAT_INTERVAL_S,
        },
        "scenarios": scenarios,
        "total_seconds": round(time.perf_counter() - began, 1),
    }


def _by_label(scenario: dict) -> dict:
    return {p["pass"]: p for p in scenario["passes"]}


def failed(result: dict) -> list[str]:
    problems = []
    for s in result["scenarios"]:
        name = f"{s['changed_pct']:g}% changed"
        if "error" in s:
            problems.append(f"{name}: {s['error'].strip().splitlines()[-1]}")
            continue
        for p in s["passes"]:
            if p["throttled_429"]:
                problems.append(
                    f"{name}, {p['pass']} pass: {p['throttled_429']} calls answered 429"
                )
            for stream, feed in p["feeds"].items():
                if feed["outcome"] == "failed":
                    problems.append(f"{name}, {p['pass']} pass: {stream} failed: {feed['message']}")
            get_order = p["calls"]["getOrder"] + p["calls"]["getOrderV0"]
            if get_order:
                problems.append(f"{name}, {p['pass']} pass: {get_order} getOrder calls")
        passes = _by_label(s)
        timed, second = passes["timed"], passes["second, right after"]
        if timed["reversals"] != s["expected_reversals"]:
            problems.append(
                f"{name}: the timed pass made {timed['reversals']} reversals, expected"
                f" {s['expected_reversals']}"
            )
        if second["reversals"]:
            problems.append(f"{name}: the second pass made {second['reversals']} reversals")
        if s["ledger_mismatches"]:
            problems.append(f"{name}: {s['ledger_mismatches']} members' balances ≠ their ledger")
    return problems


def render(result: dict) -> None:
    p = result["params"]
    plans = ", ".join(
        f"{op} {v['rate_per_s']:g}/s burst {v['burst']}" for op, v in p["emulator_plans"].items()
    )
    for s in result["scenarios"]:
        if "error" in s:
            print(f"\n{s['changed_pct']:g}% changed ERROR:\n{s['error']}")
            continue
        rows = []
        for q in s["passes"]:
            o, r = q["feeds"].get("orders", {}), q["feeds"].get("refunds", {})
            rows.append(
                [
                    q["pass"],
                    f"{q['wall_s']:.2f}",
                    q["calls"]["searchOrders"],
                    q["calls"]["listFinancialEvents"],
                    q["calls"]["getOrder"] + q["calls"]["getOrderV0"],
                    q["throttled_429"],
                    f"{o.get('pages', 0)}/{r.get('pages', 0)}",
                    f"{o.get('changes', 0)}/{r.get('changes', 0)}",
                    q["reversals"],
                    f"{o.get('outcome', '-')}/{r.get('outcome', '-')}",
                    q["queries"],
                    f"{q['connector_s']:.2f}/{q['apply_s']:.2f}",
                ]
            )
        common.print_table(
            f"Claw-back — {s['orders']:,} awarded Amazon orders, {s['changed_pct']:g}% changed"
            f" ({s['refunded_orders']} refunded: {s['refund_events']} refund events,"
            f" {s['cancelled_orders']} cancelled → {s['expected_reversals']} reversals expected);"
            f" emulator {plans}; {p['pacing']} pacing; setup {s['setup_s']:.0f} s",
            [
                "pass",
                "wall s",
                "searchOrders",
                "listFinEvents",
                "getOrder",
                "429s",
                "pages o/r",
                "changes o/r",
                "reversals",
                "outcome o/r",
                "queries",
                "platform/apply s",
            ],
            rows,
        )
        passes = _by_label(s)
        timed = passes["timed"]
        if timed["reversals"]:
            print(
                f"timed pass: {timed['queries'] / timed['reversals']:.1f} queries and"
                f" {timed['apply_s'] / timed['reversals'] * 1000:.1f} ms of _apply per reversal;"
                f" {timed['sql_s']:.1f} s in SQL; the slowest statements:"
            )
        for q in timed["slowest_sql"][:3]:
            print(
                f"  {q['seconds']:6.2f} s in {q['calls']:5d} × {q['sql'][:110]}"
                + ("…" if len(q["sql"]) > 110 else "")
            )
        print(
            f"timed pass wrote {s['awarded_to_awarded']} awarded → awarded transitions"
            " (partial refunds)"
        )
        est = timed["searchOrders_estimate"]
        if est["pages_left"]:
            print(
                f"{s['changed_orders']:,} changed orders = {est['pages']} searchOrders pages:"
                f" {est['pages_left']} beyond the burst, {est['minutes_left']:.0f} min at"
                f" 0.0056/s ({est['passes_left_at_beat']} more 15-minute passes)"
            )
        for label in passes:
            window = passes[label].get("orders_window")
            if window:
                print(
                    f"{label}: the orders window reaches back {window['since_hours_ago']:,.0f} h"
                    f" and holds {window['pages']:,} searchOrders pages; {window['pages_left']:,}"
                    f" left ≈ {window['minutes_left'] / 60:.1f} h at the sustained rate"
                )
        print(f"ledger mismatches: {s['ledger_mismatches']}")
