"""``/healthz`` for load balancers and monitors, and the start-up preflight of ``make run``.

GET /healthz → 200 ``{"status": "ok", "checks": {…}}`` when every configured part answers,
503 ``{"status": "fail", …}`` naming the failing check otherwise. The checks:

- ``database``: ``SELECT 1`` on the default database.
- ``redis``: ``PING`` to REDIS_URL (``"not configured"`` without one).
- ``broker``: a connection to CELERY_BROKER_URL (``"eager"`` without one: tasks run in-process).
- ``beat``: the age of beat's heartbeat (``flash.tasks.beat_heartbeat`` on the sync queue
  writes it every BEAT_HEARTBEAT_SECONDS); ``"stale"`` past BEAT_HEARTBEAT_MAX_AGE. It proves
  beat, the broker and a sync worker at once. ``"not configured"`` without a broker.

``?only=database,redis`` runs only those checks (a load balancer that should not take the web
out of rotation for a stopped beat; see docs/operations.md). The answer never carries a URL,
a host name or an exception's message: a failing check says only the error's type.

``python -m flash.health preflight`` refuses (exit 1, with what to set) a production start
without PostgreSQL, Redis and a broker.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from functools import lru_cache

from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

HEARTBEAT_KEY = "flash:beat-heartbeat"
TIMEOUT_S = 2.0
FAILING = {"fail", "stale"}


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)


def _failed(exc: BaseException, started: float) -> dict:
    # The type only: a message may name a host, a user or a URL.
    return {"status": "fail", "error": type(exc).__name__, "ms": _ms(started)}


def check_database() -> dict:
    started = time.monotonic()
    connection = connections["default"]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        # A broken connection is closed at the end of the request (close_old_connections).
        return _failed(exc, started)
    return {"status": "ok", "ms": _ms(started)}


@lru_cache(maxsize=4)
def _redis_client(url: str):
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=TIMEOUT_S, socket_timeout=TIMEOUT_S)


def check_redis() -> dict:
    if not settings.REDIS_URL:
        return {"status": "not configured"}
    started = time.monotonic()
    try:
        _redis_client(settings.REDIS_URL).ping()
    except Exception as exc:
        return _failed(exc, started)
    return {"status": "ok", "ms": _ms(started)}


def check_broker() -> dict:
    if not settings.CELERY_BROKER_URL:
        return {"status": "eager"}
    from flash.celery import app

    started = time.monotonic()
    try:
        with app.connection_for_write(settings.CELERY_BROKER_URL) as conn:
            conn.ensure_connection(
                max_retries=1, interval_start=0, interval_step=0, timeout=TIMEOUT_S
            )
    except Exception as exc:
        return _failed(exc, started)
    return {"status": "ok", "ms": _ms(started)}


def check_beat() -> dict:
    if not settings.CELERY_BROKER_URL:
        return {"status": "not configured"}
    if not settings.REDIS_URL:
        # The heartbeat lives in the cache, which is per process without Redis.
        return {"status": "fail", "error": "REDIS_URL is needed to read beat's heartbeat"}
    started = time.monotonic()
    try:
        beat = cache.get(HEARTBEAT_KEY)
    except Exception as exc:
        return _failed(exc, started)
    if beat is None:
        return {"status": "stale", "age_s": None, "max_age_s": settings.BEAT_HEARTBEAT_MAX_AGE}
    age = max(0.0, time.time() - float(beat))
    status = "ok" if age <= settings.BEAT_HEARTBEAT_MAX_AGE else "stale"
    return {"status": status, "age_s": round(age, 1), "max_age_s": settings.BEAT_HEARTBEAT_MAX_AGE}


CHECKS: dict[str, Callable[[], dict]] = {
    "database": check_database,
    "redis": check_redis,
    "broker": check_broker,
    "beat": check_beat,
}


def run_checks(only: list[str] | None = None) -> tuple[bool, dict]:
    names = [n for n in CHECKS if not only or n in only]
    results = {name: CHECKS[name]() for name in names}
    healthy = not any(r["status"] in FAILING for r in results.values())
    return healthy, results


@never_cache
def healthz(request):
    only = [n.strip() for n in request.GET.get("only", "").split(",") if n.strip()]
    unknown = sorted(set(only) - set(CHECKS))
    if unknown:
        return JsonResponse(
            {"status": "fail", "error": f"unknown check(s): {', '.join(unknown)}"}, status=400
        )
    healthy, results = run_checks(only)
    body = {
        "status": "ok" if healthy else "fail",
        "failing": [name for name, r in results.items() if r["status"] in FAILING],
        "checks": results,
    }
    return JsonResponse(body, status=200 if healthy else 503)


# --- make run's preflight -----------------------------------------------------------------


def preflight_problems() -> list[str]:
    """What a production start lacks, in words an operator can act on."""
    problems = []
    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" not in engine:
        problems.append(
            "DATABASE_URL must point at PostgreSQL (postgres://user:password@host:5432/flash); "
            "the SQLite default is for the demo only."
        )
    if not settings.REDIS_URL:
        problems.append(
            "REDIS_URL must be set (redis://host:6379/0): the cache, rate limits, claim pacing "
            "and beat's heartbeat live there."
        )
    if not settings.CELERY_BROKER_URL:
        problems.append(
            "CELERY_BROKER_URL must be set (redis://host:6379/1 or amqp://…): without it tasks "
            "run inside web requests."
        )
    if settings.DEBUG:
        problems.append("DEBUG must be off (DEBUG=0) in production.")
    return problems


def preflight() -> int:
    problems = preflight_problems()
    if problems:
        print("make run: cannot start Flash in production mode:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        print(
            "Set them in the environment or in .env (see .env.example and docs/operations.md).",
            file=sys.stderr,
        )
        return 1
    if settings.EMAIL_BACKEND.endswith("dummy.EmailBackend"):
        print("note: EMAIL_URL is not set, so no e-mail is sent.", file=sys.stderr)
    return 0


def main(argv: list[str]) -> int:
    import os

    import django

    if argv[1:] != ["preflight"]:
        print("usage: python -m flash.health preflight", file=sys.stderr)
        return 2
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flash.settings")
    from django.core.exceptions import ImproperlyConfigured

    try:
        django.setup()
    except ImproperlyConfigured as exc:
        print(f"make run: cannot start Flash: {exc}", file=sys.stderr)
        return 1
    return preflight()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
