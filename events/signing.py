"""How a webhook is signed, and how a receiver checks it.

Each request carries::

    X-Flash-Timestamp: 1767225600                 (Unix seconds, fresh on every attempt)
    X-Flash-Signature: sha256=<hex>               (HMAC-SHA256 with the endpoint's secret)

where ``<hex>`` is the HMAC-SHA256, keyed with the endpoint's signing secret (the whole
``whsec_…`` string, UTF-8), of the timestamp, a dot, and the raw request body bytes::

    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + raw_body, sha256).hexdigest()

To verify: read the raw body before parsing JSON (re-serialising changes the bytes), recompute,
compare with ``hmac.compare_digest``, and reject timestamps more than five minutes from now so a
captured request cannot be replayed later. ``verify`` below does exactly that. Deliveries are
at least once: de-duplicate on the body's ``id`` (the event) or ``X-Flash-Delivery``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

SECRET_PREFIX = "whsec_"
SCHEME = "sha256"
TOLERANCE_SECONDS = 300


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)  # 256 bits


def signature(secret: str, timestamp: int | str, body: bytes) -> str:
    """The ``X-Flash-Signature`` header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SCHEME}={mac.hexdigest()}"


def verify(
    secret: str,
    *,
    timestamp: str | None,
    body: bytes,
    header: str | None,
    tolerance: int = TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """What a receiver does: a valid signature on a fresh timestamp."""
    if not timestamp or not header or not timestamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), header)
