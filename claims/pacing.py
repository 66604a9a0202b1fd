"""A token bucket per channel (and per operation), consulted before every call to a platform,
so claims and the claw-back job stay inside its rate limits (Amazon getOrder: 0.5 requests/s,
burst 30; searchOrders: one request every 3 minutes, burst 20).

With REDIS_URL the bucket lives in Redis (one Lua script: shared by every worker); without it,
in this process (tests, a single worker)."""

from __future__ import annotations

import threading
import time

from django.conf import settings

# kind → (tokens per second, burst) of the order fetch (getOrder) claims verification makes
LIMITS = {
    "amazon": (0.5, 30),
    "tiktok": (10.0, 20),
}
# (kind, operation) → (tokens per second, burst) of the claw-back job's change feeds. Amazon's
# are its published usage plans; TikTok Shop publishes none per seller, so we stay modest.
OPERATION_LIMITS = {
    ("amazon", "searchOrders"): (0.0056, 20),
    ("amazon", "listFinancialEvents"): (0.5, 30),
    ("tiktok", "searchOrders"): (1.0, 10),
    ("tiktok", "searchReturns"): (1.0, 10),
}
DEFAULT_LIMIT = (1.0, 10)

_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 60)
return tostring(wait)
"""

_lock = threading.Lock()
_local: dict[str, tuple[float, float]] = {}
_redis = None


def _limit(kind: str, operation: str = "") -> tuple[float, int]:
    if operation:
        overrides = getattr(settings, "PLATFORM_CALL_LIMITS", {}) or {}
        key = (kind, operation)
        return tuple(
            overrides.get(f"{kind}.{operation}") or OPERATION_LIMITS.get(key) or DEFAULT_LIMIT
        )
    overrides = getattr(settings, "CLAIM_FETCH_LIMITS", {}) or {}
    return tuple(overrides.get(kind) or LIMITS.get(kind) or DEFAULT_LIMIT)


def _take_local(key: str, rate: float, burst: int, now: float) -> float:
    with _lock:
        tokens, at = _local.get(key, (float(burst), now))
        tokens = min(float(burst), tokens + max(0.0, now - at) * rate)
        if tokens >= 1:
            _local[key] = (tokens - 1, now)
            return 0.0
        _local[key] = (tokens, now)
        return (1 - tokens) / rate


def _client():
    global _redis
    if _redis is None:
        import redis

        _redis = redis.Redis.from_url(settings.REDIS_URL)
    return _redis


def _take_redis(key: str, rate: float, burst: int, now: float) -> float:
    return float(_client().eval(_LUA, 1, key, rate, burst, now))


# Our bucket and the platform's cannot be in step: a request reaches the platform some time
# after its token was taken here, and that delay varies (a login call first, a busy worker).
# Keeping two tokens in reserve absorbs up to 2 / rate seconds of such jitter (4 s on Amazon),
# so the platform never answers 429 for pacing; the whole rate is still used.
HEADROOM = 2


def take(channel, operation: str = "") -> float:
    """Take one call token for the channel (an order fetch, or the named feed ``operation``):
    0 when granted, else the seconds to wait."""
    rate, burst = _limit(channel.kind, operation)
    burst = max(1, burst - HEADROOM)
    prefix = getattr(settings, "PACING_KEY_PREFIX", "flash")
    key = f"{prefix}:claims:bucket:{channel.pk}" + (f":{operation}" if operation else "")
    now = time.time()
    if getattr(settings, "REDIS_URL", ""):
        return _take_redis(key, rate, burst, now)
    return _take_local(key, rate, burst, now)


def reset() -> None:
    """Forget the buckets, in this process and in Redis (tests: each run has its own prefix)."""
    with _lock:
        _local.clear()
    if getattr(settings, "REDIS_URL", ""):
        prefix = getattr(settings, "PACING_KEY_PREFIX", "flash")
        for key in _client().scan_iter(match=f"{prefix}:claims:bucket:*", count=1000):
            _client().delete(key)
