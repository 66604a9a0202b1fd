"""Plumbing shared by the three platform emulators: requests, responses, faults, rate limits.

Framework-free on purpose (stdlib only): the emulator runs in a test's thread, in the demo, or
as its own process, and must never import Django."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import parse_qs

HTML_500 = (
    b"<html><head><title>500 Internal Server Error</title></head>"
    b"<body><h1>Internal Server Error</h1></body></html>"
)

FAULT_MODES = ("429", "500", "slow", "revoked", "non_json_500")


class Request:
    def __init__(self, environ: dict, path: str):
        self.method = environ["REQUEST_METHOD"].upper()
        self.path = path  # below the platform prefix, e.g. /orders/2026-01-01/orders/1
        self.raw_query = environ.get("QUERY_STRING", "")
        self.query = {k: v[-1] for k, v in parse_qs(self.raw_query, keep_blank_values=True).items()}
        self.headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            self.headers["content-type"] = environ["CONTENT_TYPE"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        self.body = environ["wsgi.input"].read(length) if length else b""

    def json(self):
        try:
            return json.loads(self.body or b"{}")
        except ValueError:
            return None

    def form(self) -> dict:
        """A form-encoded or JSON body as a flat dict (OAuth endpoints accept both)."""
        if "json" in self.headers.get("content-type", ""):
            data = self.json()
            return data if isinstance(data, dict) else {}
        return {k: v[-1] for k, v in parse_qs(self.body.decode("utf-8", "replace")).items()}


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "application/json"


def json_response(status: int, obj, headers=()) -> Response:
    body = json.dumps(obj, default=_json_default).encode()
    return Response(status, body, list(headers))


def _json_default(value):
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(type(value).__name__)


def html_500() -> Response:
    return Response(500, HTML_500, content_type="text/html; charset=utf-8")


def token(prefix: str, nbytes: int = 24) -> str:
    return prefix + secrets.token_urlsafe(nbytes).replace("-", "x").replace("_", "y")


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: str) -> float | None:
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


@dataclass
class Fault:
    mode: str
    times: int | None = None  # None: until cleared
    seconds: float = 0.0  # for "slow"
    retry_after: float = 1.0  # for "429"


class TokenBucket:
    """The SP-API usage plan: `burst` requests at once, refilled at `rate` per second."""

    def __init__(self, rate: float, burst: int, clock=time.monotonic):
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens = float(burst)
        self.stamp = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class LeakyBucket:
    """Shopify's calculated query cost: points restored continuously at `restore_rate`/s."""

    def __init__(self, maximum: float, restore_rate: float, clock=time.monotonic):
        self.maximum, self.restore_rate, self.clock = maximum, restore_rate, clock
        self.available = float(maximum)
        self.stamp = clock()

    def _restore(self) -> None:
        now = self.clock()
        self.available = min(self.maximum, self.available + (now - self.stamp) * self.restore_rate)
        self.stamp = now

    def try_spend(self, cost: float) -> bool:
        self._restore()
        if cost > self.available:
            return False
        self.available -= cost
        return True

    def refund(self, points: float) -> None:
        self.available = min(self.maximum, self.available + points)

    def status(self) -> dict:
        self._restore()
        return {
            "maximumAvailable": float(self.maximum),
            "currentlyAvailable": int(self.available),
            "restoreRate": float(self.restore_rate),
        }


class FaultBoard:
    """Fault modes per (platform, operation); operation "*" covers every operation."""

    def __init__(self):
        self._faults: dict[tuple[str, str], Fault] = {}
        self._lock = threading.Lock()

    def set(self, platform: str, operation: str, fault: Fault) -> None:
        if fault.mode not in FAULT_MODES:
            raise ValueError(f"Unknown fault mode {fault.mode!r}; use one of {FAULT_MODES}.")
        with self._lock:
            self._faults[(platform, operation)] = fault

    def clear(self, platform: str | None = None, operation: str | None = None) -> None:
        with self._lock:
            for key in list(self._faults):
                if (platform is None or key[0] == platform) and (
                    operation is None or key[1] == operation
                ):
                    del self._faults[key]

    def take(self, platform: str, operation: str) -> Fault | None:
        """The fault to apply to this call, counting down limited ones."""
        with self._lock:
            for key in ((platform, operation), (platform, "*")):
                fault = self._faults.get(key)
                if fault is None:
                    continue
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        del self._faults[key]
                return fault
        return None

    def snapshot(self) -> list[dict]:
        with self._lock:
            return [
                {"platform": p, "operation": o, **vars(f)} for (p, o), f in self._faults.items()
            ]


class Meter:
    """Counts every call per "platform.operation" (tests and benchmarks read these)."""

    def __init__(self):
        self.calls: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()
        self._lock = threading.Lock()

    def hit(self, platform: str, operation: str) -> None:
        with self._lock:
            self.calls[f"{platform}.{operation}"] += 1

    def throttle(self, platform: str, operation: str) -> None:
        with self._lock:
            self.throttled[f"{platform}.{operation}"] += 1

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.throttled.clear()
