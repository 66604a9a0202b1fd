"""Missing-order claims: verifications per minute against the emulator at Amazon's real getOrder
limit, for 1 and for 10 channels, and the review-queue page with 10 000 pending claims.

1. Verification — the marketplace emulator runs in this process on a loopback port with its
   REAL usage plan (getOrder 0.5/s, burst 30, per seller). One team, N Amazon channels (each its
   own seller, LWA app credentials sealed in the channel), rollout on, CLAIMS_PER_CHANNEL shipped
   orders per seller claimed through ``claim_submit`` (more than burst + rate × window, so the
   window, not the queue, is the limit). The enqueue after commit is captured instead of run
   eagerly, and the claims are driven as production's Celery would: WORKERS threads take due
   tasks from a schedule and run ``verify.verify`` (the body of the ``verify_claim`` task); when
   it answers "retry in s" (no pacing token) the task is re-scheduled ``max(1, round(s))``
   seconds later, exactly as ``tasks._later``'s ``apply_async(countdown=…)``. Pacing is the
   real token bucket, in Redis (the shared Lua script, BENCH_CLAIMS_REDIS_URL, a database of the
   bench's own, emptied before and after) or in-process when Redis does not answer. For a fixed
   window: claims verified (→ pending review) per minute, the emulator's getOrder calls and 429s
   (must be 0: pacing never exceeds the limit), and the ceiling burst + 0.5/s × window per
   channel (pacing should come close to it).
2. Review queue — 10 000 pending-review claims (bulk-created with their verified orders, spread
   over 30 days, 500 members), then the changelist ``/admin/claims/claim/`` for a staff reviewer
   of the team (Django test Client, force_login, in this process against the bench database):
   p50/p99 ms and SQL queries per request over PAGE_REQUESTS requests after a warm-up.

Knobs (environment): BENCH_CLAIMS_WINDOW seconds per throughput run (60),
BENCH_CLAIMS_PER_CHANNEL (80), BENCH_CLAIMS_WORKERS (2), BENCH_CLAIMS_CHANNELS ("1,10"),
BENCH_CLAIMS_QUEUE (10000), BENCH_CLAIMS_PAGE_REQUESTS (20),
BENCH_CLAIMS_REDIS_URL (redis://127.0.0.1:6379/5).
"""

from __future__ import annotations

import heapq
import os
import threading
import time
import traceback
from datetime import timedelta
from decimal import Decimal
from unittest import mock

from . import common, ledger

WINDOW_S = float(os.environ.get("BENCH_CLAIMS_WINDOW", 60))
CLAIMS_PER_CHANNEL = int(os.environ.get("BENCH_CLAIMS_PER_CHANNEL", 80))
WORKERS = int(os.environ.get("BENCH_CLAIMS_WORKERS", 2))
CHANNEL_COUNTS = tuple(
    int(n) for n in os.environ.get("BENCH_CLAIMS_CHANNELS", "1,10").split(",") if n.strip()
)
QUEUE_CLAIMS = int(os.environ.get("BENCH_CLAIMS_QUEUE", 10_000))
PAGE_REQUESTS = int(os.environ.get("BENCH_CLAIMS_PAGE_REQUESTS", 20))
PAGE_WARMUP = 3
REDIS_URL = os.environ.get("BENCH_CLAIMS_REDIS_URL", "redis://127.0.0.1:6379/5")
RATE, BURST = 0.5, 30  # Amazon getOrder's published usage plan, the emulator's default
DAILY_LIMIT = 10  # claims.services.DAILY_LIMIT: submissions per member per day
CLIENT_ID = "amzn1.application-oa2-client.bench0000000000000000000000000000"
CLIENT_SECRET = "amzn1.oa2-cs.v1.bench" + "0123456789abcdef" * 3
MARKETPLACE = "ATVPDKIKX0DER"
PAGE = "/admin/claims/claim/"
HOST = "127.0.0.1"


# --- setup -----------------------------------------------------------------------------------


def _fresh_team(slug: str):
    from loyalty.models import EarningPolicy, Plan, Team, Tier

    common.truncate_app_tables("claims", "loyalty", "channels_app")
    team = Team.objects.create(name=f"Bench {slug}", slug=slug, plan=Plan.OMNICHANNEL)
    Tier.objects.create(team=team, name="Member", threshold=0, multiplier=Decimal("1"))
    EarningPolicy.objects.create(team=team, currency="USD", rate=Decimal("1.0000"))
    return team


def _members(team, count: int) -> list:
    from loyalty.models import Member, Tier

    tier = Tier.objects.get(team=team)
    Member.objects.bulk_create(
        [Member(team=team, email=f"claimer{i}@bench.example", tier=tier) for i in range(count)],
        batch_size=2000,
    )
    return list(Member.objects.filter(team=team).select_related("team", "tier").order_by("pk"))


def _amazon_channel(team, server, n: int):
    return common.amazon_channel(
        team,
        server,
        name=f"Amazon {n}",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        refresh_token=f"Atzr|bench-refresh-{n:03d}",
        marketplace=MARKETPLACE,
    )


# --- 1. verification throughput ---------------------------------------------------------------


class _Schedule:
    """What a broker with countdowns does: tasks become due at a time, workers take due ones."""

    def __init__(self):
        self._heap: list[tuple[float, int, int]] = []
        self._cond = threading.Condition()
        self._seq = 0
        self.stopped = False

    def put(self, due: float, claim_id: int) -> None:
        with self._cond:
            self._seq += 1
            heapq.heappush(self._heap, (due, self._seq, claim_id))
            self._cond.notify()

    def take(self, until: float) -> tuple[int, float] | None:
        """(claim id, how late it was taken) of the next due task, or None once stopped."""
        with self._cond:
            while not self.stopped:
                now = time.monotonic()
                if now >= until:
                    return None
                if self._heap and self._heap[0][0] <= now:
                    due, _, claim_id = heapq.heappop(self._heap)
                    return claim_id, now - due
                wait = (self._heap[0][0] - now) if self._heap else 0.2
                self._cond.wait(min(wait, until - now, 0.2))
            return None

    def stop(self) -> None:
        with self._cond:
            self.stopped = True
            self._cond.notify_all()


def _throughput(n_channels: int, use_redis: bool) -> dict:
    from django.db import connection
    from django.db.models import Count
    from django.test import override_settings
    from django.utils import timezone

    from channels_app.connectors import amazon as amazon_adapter
    from channels_app.sandbox import Sandbox, SandboxServer
    from claims import pacing, services, verify
    from claims.models import Claim, ClaimStatus

    team = _fresh_team(f"bench-claims-{n_channels}")
    sandbox = Sandbox()
    sandbox.amazon.add_app(CLIENT_ID, CLIENT_SECRET)
    limits = sandbox.amazon.limits["getOrder"]
    if limits != (RATE, BURST):
        raise RuntimeError(f"the emulator's getOrder plan is {limits}, not {(RATE, BURST)}")
    server = SandboxServer(sandbox).start()
    amazon_adapter.clear_token_cache()
    pacing.reset()
    pacing._redis = None
    redis_client = common.redis_client(REDIS_URL) if use_redis else None
    if redis_client is not None:
        redis_client.flushdb()
    settings_override = override_settings(REDIS_URL=REDIS_URL if use_redis else "")
    settings_override.enable()
    try:
        total = n_channels * CLAIMS_PER_CHANNEL
        members = _members(team, -(-total // DAILY_LIMIT))
        purchased = time.time() - 2 * 86400
        enqueued: list[int] = []
        submit_started = time.perf_counter()
        for c in range(n_channels):
            seller_id = f"A{c:03d}BENCHSELLER"
            sandbox.amazon.add_seller(
                seller_id=seller_id,
                name=f"Bench seller {c}",
                store_name=f"Bench store {c}",
                client_id=CLIENT_ID,
                refresh_token=f"Atzr|bench-refresh-{c:03d}",
                marketplace_ids=[MARKETPLACE],
            )
            channel = _amazon_channel(team, server, c)
            services.rollout_set(channel=channel, stage="on")
            with mock.patch("claims.services._enqueue", enqueued.append):
                for i in range(CLAIMS_PER_CHANNEL):
                    order = sandbox.amazon.add_order(
                        seller_id=seller_id,
                        order_id=f"{100 + c:03d}-{i:07d}-{c * 1000 + i:07d}",
                        created=purchased,
                        status="SHIPPED",
                        total=Decimal("40.00"),
                    )
                    member = members[(c * CLAIMS_PER_CHANNEL + i) // DAILY_LIMIT]
                    services.claim_submit(
                        member=member,
                        channel_public_id=channel.public_id,
                        order_number=order.order_id,
                        postal_code="10001",
                    )
        submit_s = time.perf_counter() - submit_started
        if len(enqueued) != total:
            raise RuntimeError(f"{len(enqueued)} verify tasks enqueued for {total} claims")
        ledger._analyze("claims_claim", "loyalty_member", "channels_app_channel")
        sandbox.reset_calls()

        schedule = _Schedule()
        lock = threading.Lock()
        stats = {"tasks": 0, "paced": 0, "verified": 0, "other": {}, "late_max_s": 0.0}
        errors: list[str] = []
        started = time.monotonic()
        for claim_id in enqueued:
            schedule.put(started, claim_id)
        ends = started + WINDOW_S
        snapshot: dict = {}

        def worker() -> None:
            try:
                while (item := schedule.take(ends)) is not None:
                    claim_id, late = item
                    outcome = verify.verify(claim_id)
                    done_at = time.monotonic()
                    with lock:
                        stats["tasks"] += 1
                        stats["late_max_s"] = max(stats["late_max_s"], late)
                        if outcome.status is None and outcome.retry_in is not None:
                            stats["paced"] += 1
                        elif outcome.status == ClaimStatus.PENDING_REVIEW:
                            if done_at <= ends:
                                stats["verified"] += 1
                        elif outcome.status is not None:
                            other = stats["other"]
                            other[outcome.status] = other.get(outcome.status, 0) + 1
                    if outcome.retry_in is not None:
                        # tasks._later: apply_async(countdown=max(1, round(seconds)))
                        schedule.put(done_at + max(1, round(outcome.retry_in)), claim_id)
            except BaseException:
                errors.append(traceback.format_exc())
                schedule.stop()
            finally:
                connection.close()

        threads = [
            threading.Thread(target=worker, name=f"bench-verify-{w}", daemon=True)
            for w in range(WORKERS)
        ]
        for t in threads:
            t.start()
        time.sleep(max(0.0, ends - time.monotonic()))
        snapshot = {
            "get_order_calls": sandbox.call_count("amazon", "getOrder"),
            "throttled_429": sandbox.throttled_count("amazon", "getOrder"),
        }
        schedule.stop()
        for t in threads:
            t.join(timeout=30)
        after = {
            "get_order_calls": sandbox.call_count("amazon", "getOrder"),
            "throttled_429": sandbox.throttled_count("amazon", "getOrder"),
        }
        statuses = dict(
            Claim.objects.filter(team=team)
            .values_list("status")
            .annotate(n=Count("pk"))
            .values_list("status", "n")
        )
        ceiling_per_channel = BURST + RATE * WINDOW_S
        ceiling = n_channels * ceiling_per_channel
        verified = stats["verified"]
        return {
            "channels": n_channels,
            "claims_queued": total,
            "submit_s": round(submit_s, 1),
            "window_s": WINDOW_S,
            "workers": WORKERS,
            "pacing": "redis" if use_redis else "in-process",
            "verified": verified,
            "verified_per_min": round(verified / WINDOW_S * 60, 1),
            "get_order_calls": snapshot["get_order_calls"],
            "throttled_429": snapshot["throttled_429"],
            "get_order_calls_incl_in_flight": after["get_order_calls"],
            "throttled_429_incl_in_flight": after["throttled_429"],
            "ceiling": ceiling,
            "ceiling_per_min": round(ceiling / WINDOW_S * 60, 1),
            "of_ceiling": round(snapshot["get_order_calls"] / ceiling, 3),
            "tasks_run": stats["tasks"],
            "paced_retries": stats["paced"],
            "other_outcomes": stats["other"],
            "max_task_lateness_s": round(stats["late_max_s"], 3),
            "claim_statuses_after": statuses,
            "errors": errors[:3],
            "at": timezone.now().isoformat(timespec="seconds"),
        }
    finally:
        settings_override.disable()
        pacing.reset()
        pacing._redis = None
        if redis_client is not None:
            redis_client.flushdb()
        server.stop()
        amazon_adapter.clear_token_cache()


# --- 2. the review queue ----------------------------------------------------------------------


def _review_queue() -> dict:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from channels_app.models import Channel, Kind
    from claims.models import Claim, ClaimStatus, VerifiedOrder
    from loyalty.models import Role, TeamMembership

    team = _fresh_team("bench-claims-queue")
    members = _members(team, 500)
    channel = Channel(team=team, kind=Kind.AMAZON, name="Amazon", config={"region": "na"})
    channel.save()
    started = time.perf_counter()
    now = timezone.now()
    orders = VerifiedOrder.objects.bulk_create(
        [
            VerifiedOrder(
                team=team,
                channel=channel,
                order_id=f"{100 + i % 900:03d}-{i:07d}-{i * 7 % 10_000_000:07d}",
                marketplace="Amazon.com",
                status="SHIPPED",
                purchased_at=now - timedelta(days=2 + i % 60),
                total=Decimal(20 + i % 200) + Decimal("0.99"),
                currency="USD",
                item_count=1 + i % 3,
                delivered=i % 2 == 0,
                buyer_match=("match", "mismatch", "not_given")[i % 3],
            )
            for i in range(QUEUE_CLAIMS)
        ],
        batch_size=2000,
    )
    Claim.objects.bulk_create(
        [
            Claim(
                team=team,
                member=members[i % len(members)],
                channel=channel,
                order_number=order.order_id,
                postal_match=order.buyer_match,
                status=ClaimStatus.PENDING_REVIEW,
                status_reason="verified with Amazon",
                verified_order=order,
                points_preview=int(order.total),
                attempts=1,
            )
            for i, order in enumerate(orders)
        ],
        batch_size=2000,
    )
    with connection.cursor() as cur:  # a month of submissions, not all of them this second
        cur.execute("UPDATE claims_claim SET created_at = now() - (id % 720) * interval '1 hour'")
    ledger._analyze("claims_claim", "claims_verifiedorder", "loyalty_member")
    insert_s = time.perf_counter() - started

    User = get_user_model()
    User.objects.filter(username="bench-reviewer").delete()
    reviewer = User.objects.create_user("bench-reviewer", "reviewer@bench.example", is_staff=True)
    TeamMembership.objects.create(team=team, user=reviewer, role=Role.REVIEWER)
    client = Client(HTTP_HOST=HOST)
    client.force_login(reviewer)

    def get():
        return client.get(PAGE, secure=True)

    for _ in range(PAGE_WARMUP):
        response = get()
        if response.status_code != 200:
            raise RuntimeError(f"{PAGE} answered {response.status_code} to the reviewer")
    samples, queries, rows = [], [], set()
    for _ in range(PAGE_REQUESTS):
        with CaptureQueriesContext(connection) as captured:
            t0 = time.perf_counter()
            response = get()
            samples.append(time.perf_counter() - t0)
        if response.status_code != 200:
            raise RuntimeError(f"{PAGE} answered {response.status_code} to the reviewer")
        queries.append(len(captured))
        rows.add(response.content.count(b'name="_selected_action"'))
    User.objects.filter(pk=reviewer.pk).delete()
    return {
        "pending_claims": Claim.objects.filter(status=ClaimStatus.PENDING_REVIEW).count(),
        "insert_s": round(insert_s, 1),
        "page": PAGE,
        "client": "django.test.Client, force_login (staff reviewer of the team), in-process",
        "requests": PAGE_REQUESTS,
        "warmup": PAGE_WARMUP,
        "latency": common.percentiles(samples),
        "queries_per_request": sorted(set(queries)),
        "rows_per_page": sorted(rows),
        "response_bytes": len(response.content),
    }


# --- the bench ----------------------------------------------------------------------------------


def run() -> dict:
    common.prepare()
    began = time.perf_counter()
    environment = common.environment()
    use_redis = common.redis_answers(REDIS_URL)
    runs = []
    for n in CHANNEL_COUNTS:
        print(
            f"claims: {n} Amazon channel(s) × {CLAIMS_PER_CHANNEL} claims, {WORKERS} worker"
            f" thread(s), {'Redis' if use_redis else 'in-process'} pacing, {WINDOW_S:g} s …",
            flush=True,
        )
        try:
            runs.append(_throughput(n, use_redis))
        except Exception:
            runs.append({"channels": n, "error": traceback.format_exc()})
    print(f"claims: review queue with {QUEUE_CLAIMS:,} pending claims …", flush=True)
    try:
        queue = _review_queue()
    except Exception:
        queue = {"error": traceback.format_exc()}
    common.truncate_app_tables("claims", "loyalty", "channels_app")
    return {
        "bench": "claims",
        "environment": environment,
        "loadavg_1m_end": round(os.getloadavg()[0], 2),
        "params": {
            "window_s": WINDOW_S,
            "claims_per_channel": CLAIMS_PER_CHANNEL,
            "workers": WORKERS,
            "driver": "worker threads running verify.verify for due tasks, re-scheduled"
            " max(1, round(retry_in)) s later like tasks._later",
            "pacing": f"redis ({REDIS_URL})" if use_redis else "in-process",
            "emulator_get_order_plan": {"rate_per_s": RATE, "burst": BURST},
            "queue_claims": QUEUE_CLAIMS,
            "page_requests": PAGE_REQUESTS,
        },
        "verification": runs,
        "review_queue": queue,
        "total_seconds": round(time.perf_counter() - began, 1),
    }


def failed(result: dict) -> list[str]:
    problems = []
    for r in result["verification"]:
        if "error" in r:
            problems.append(f"{r['channels']} channel(s): {r['error'].strip().splitlines()[-1]}")
            continue
        if r["errors"]:
            problems.append(f"{r['channels']} channel(s): worker error {r['errors'][0]}")
        if r["throttled_429_incl_in_flight"]:
            problems.append(
                f"{r['channels']} channel(s): {r['throttled_429_incl_in_flight']} getOrder calls"
                " answered 429 — pacing exceeded the limit"
            )
    if "error" in result["review_queue"]:
        problems.append(f"review queue: {result['review_queue']['error'].strip()}")
    return problems


def render(result: dict) -> None:
    rows = []
    for r in result["verification"]:
        if "error" in r:
            rows.append([f"{r['channels']} channel(s)", "ERROR", "", "", "", "", ""])
            continue
        rows.append(
            [
                f"{r['channels']} channel(s)",
                f"{r['verified']:,}",
                f"{r['verified_per_min']:,.1f}",
                f"{r['get_order_calls']:,}",
                f"{r['throttled_429']:,}",
                f"{r['ceiling']:,.0f} ({r['ceiling_per_min']:,.0f}/min)",
                f"{r['of_ceiling']:.0%}",
            ]
        )
    p = result["params"]
    common.print_table(
        f"Claim verification — emulator getOrder {p['emulator_get_order_plan']['rate_per_s']}/s"
        f" burst {p['emulator_get_order_plan']['burst']} per seller, {p['window_s']:g} s window,"
        f" {p['workers']} worker thread(s), {p['pacing']} pacing",
        ["run", "verified", "per min", "getOrder", "429s", "ceiling", "of ceiling"],
        rows,
    )
    for r in result["verification"]:
        if "error" in r:
            print(f"{r['channels']} channel(s) ERROR:\n{r['error']}")
        elif r["errors"]:
            print(f"{r['channels']} channel(s) worker errors:\n{r['errors'][0]}")
    q = result["review_queue"]
    if "error" in q:
        print(f"\nreview queue ERROR:\n{q['error']}")
        return
    lat = q["latency"]
    common.print_table(
        f"Review queue {q['page']} — {q['pending_claims']:,} pending claims, a reviewer,"
        f" {q['requests']} requests after {q['warmup']} warm-up (test Client, in-process)",
        ["page", "p50 ms", "p90 ms", "p99 ms", "max ms", "queries", "rows"],
        [
            [
                "changelist",
                f"{lat['p50_ms']:.1f}",
                f"{lat['p90_ms']:.1f}",
                f"{lat['p99_ms']:.1f}",
                f"{lat['max_ms']:.1f}",
                "/".join(str(n) for n in q["queries_per_request"]),
                "/".join(str(n) for n in q["rows_per_page"]),
            ]
        ],
    )
