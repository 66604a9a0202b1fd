"""TikTok Shop adapter (Partner API 202309): a small signed client on `requests`.

No maintained Python SDK exists. Every request carries `app_key`, `timestamp` and `sign` (see
`sign_request`); shop-scoped ones also the `shop_cipher` that Save & Verify discovered. TikTok
rotates the refresh token on every refresh, so refreshes are single-flight per channel (see
tokens.py) and the newest refresh token is persisted, sealed, before the lock is released.

Claw-back windows (`order_changes`, `refund_changes`) cover [since, until) in TikTok's whole
seconds: `update_time_ge = floor(since)`, `update_time_lt = floor(until)`. Adjacent windows
neither overlap nor leave a gap, and a second is served by the window in which it has ended
(until >= that second + 1), so changes stamped with a second that is not over yet are left to the
next window rather than missed."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import re
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

import requests
from django.conf import settings

from channels_app.models import Channel

from .base import (
    BuyerHint,
    ChangePage,
    ConfigField,
    ConnectionCheck,
    ConnectorError,
    OrderNotFound,
    OrderProjection,
    PageExpired,
    PermanentError,
    RateLimited,
    RefundEvent,
    TemporaryError,
    compare_buyer,
)
from .tokens import ACCESS, TokenGrant, ensure_token, usable_token

log = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://open-api.tiktokglobalshop.com"
DEFAULT_AUTH_BASE = "https://auth.tiktok-shops.com"
SHOP_CIPHER_ERROR = 106011
SIGN_ERROR = 106001
APP_ERROR = 36004002
REFRESH_TOKEN_ERROR = 36004004
INVALID_PARAMETER = 36009003  # also how a refused page_token is answered
DELIVERED = {"DELIVERED", "COMPLETED"}
PAGE_SIZE = 50
ORDER_CHANGES_PAGE_SIZE = 100
RETURNS_PAGE_SIZE = 50
# Only money that was given back counts: completed refunds, with or without a return.
REFUND_COMPLETE = "RETURN_OR_REFUND_REQUEST_COMPLETE"
REFUND_TYPES = ("REFUND", "RETURN_AND_REFUND")


def sign_request(app_secret: str, path: str, params: Mapping[str, str], body: bytes = b"") -> str:
    """TikTok Shop's request signature.

    The query parameters except `sign` and `access_token`, sorted by key and concatenated as
    key+value; the string is path + that + the exact body bytes; it is wrapped in the app
    secret on both sides and signed with HMAC-SHA256 keyed with the app secret (hex)."""
    joined = "".join(
        f"{key}{params[key]}" for key in sorted(params) if key not in ("sign", "access_token")
    )
    secret = app_secret.encode()
    message = secret + path.encode() + joined.encode() + body + secret
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def is_token_code(code: int) -> bool:
    """105xxx and 360xxx codes are token problems (expired, invalid, revoked)."""
    return 105000 <= code < 106000 or 36000000 <= code < 36100000


class _TokenRejected(Exception):
    def __init__(self, code: int):
        self.code = code


class _DropSecretQueries(logging.Filter):
    # The token endpoint takes app_secret and refresh_token in its query string (TikTok's
    # design); urllib3's debug log would print them. Drop those lines.
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # a malformed record is not ours to judge
            return True
        return "app_secret=" not in text and "refresh_token=" not in text


logging.getLogger("urllib3.connectionpool").addFilter(_DropSecretQueries())


class TikTokConnector:
    kind = "tiktok"
    order_number_pattern = r"^\d{15,20}$"
    config_fields = (
        ConfigField(
            "app_key", "App key", help="Partner Center → App & Service → your app → App key."
        ),
        ConfigField(
            "api_base",
            "API base URL",
            required=False,
            default=DEFAULT_API_BASE,
            help="Change only for a sandbox or the local emulator.",
        ),
        ConfigField(
            "auth_base",
            "Auth base URL",
            required=False,
            default=DEFAULT_AUTH_BASE,
            help="Change only for a sandbox or the local emulator.",
        ),
        ConfigField(
            "shop_cipher",
            "Shop cipher",
            required=False,
            help="Discovered by Save & Verify from the shops this authorization covers.",
        ),
    )
    secret_fields = (
        ConfigField(
            "app_secret", "App secret", help="Partner Center → App & Service → App secret."
        ),
        ConfigField(
            "refresh_token",
            "Refresh token",
            help="From authorizing the app for the shop. TikTok replaces it on every refresh; "
            "Flash keeps the newest one.",
        ),
    )

    def __init__(
        self,
        channel: Channel,
        *,
        timeout: float | None = None,
        refresh_margin: timedelta = timedelta(minutes=5),
    ):
        self.channel = channel
        self.timeout = timeout or getattr(settings, "CHANNEL_HTTP_TIMEOUT", 10.0)
        self.refresh_margin = refresh_margin
        self._prefer_memory = False
        self._session = requests.Session()

    # --- configuration ---
    @property
    def api_base(self) -> str:
        return (self.channel.config.get("api_base") or DEFAULT_API_BASE).rstrip("/")

    @property
    def auth_base(self) -> str:
        return (self.channel.config.get("auth_base") or DEFAULT_AUTH_BASE).rstrip("/")

    def _app_key(self) -> str:
        app_key = self.channel.config.get("app_key")
        if not app_key:
            raise PermanentError("The TikTok Shop app key is missing — enter it in Online Shop.")
        return app_key

    def _secret(self, source: Channel, name: str, label: str) -> str:
        value = source.secret(name) if name in source.sealed_secrets else None
        if not value:
            raise PermanentError(f"The TikTok Shop {label} is missing — enter it in Online Shop.")
        return value

    # --- the contract ---
    def check(self) -> ConnectionCheck:
        """Save & Verify: the shops this authorization covers; keeps the shop cipher."""
        self._prefer_memory = True  # verify the credentials in hand, saved or not
        try:
            data = self._call("GET", "/authorization/202309/shops", shop_scoped=False)
        finally:
            self._prefer_memory = False
        shops = [s for s in data.get("shops") or [] if s.get("cipher")]
        if not shops:
            raise PermanentError(
                "This authorization covers no TikTok shop — authorize the app for your shop in "
                "TikTok Shop Seller Center, then paste the new refresh token."
            )
        current = self.channel.config.get("shop_cipher")
        chosen = next((s for s in shops if s["cipher"] == current), shops[0])
        names = ", ".join(f"{s.get('name')} ({s.get('region')})" for s in shops)
        return ConnectionCheck(
            summary=f"Authorized TikTok shops: {names}. Using {chosen.get('name')}.",
            details={
                "shops": [
                    {k: s.get(k) for k in ("id", "name", "region", "code", "seller_type")}
                    for s in shops
                ],
                "shop_id": chosen.get("id"),
                "shop_name": chosen.get("name"),
            },
            discovered_config={"shop_cipher": chosen["cipher"]},
        )

    def fetch_order(self, order_number: str, *, match: BuyerHint | None = None) -> OrderProjection:
        number = (order_number or "").strip()
        if not re.match(self.order_number_pattern, number):
            raise OrderNotFound(f"'{number}' is not a TikTok Shop order number (digits only).")
        data = self._call("GET", "/order/202309/orders", params={"ids": number})
        order = next((o for o in data.get("orders") or [] if str(o.get("id")) == number), None)
        if order is None:
            # Unknown and another shop's orders look the same: both simply are not returned.
            raise OrderNotFound(f"TikTok Shop has no order {number} in this shop.")
        return self._project(order, match)

    def changed_orders(self, since: datetime) -> Iterator[OrderProjection]:
        """Orders updated at or after `since`, oldest change first (claw-back)."""
        body = {"update_time_ge": int(since.timestamp())}
        page_token = ""
        while True:
            params = {"page_size": str(PAGE_SIZE), "sort_field": "update_time", "sort_order": "ASC"}
            if page_token:
                params["page_token"] = page_token
            data = self._call("POST", "/order/202309/orders/search", params=params, body=body)
            projections = [self._project(o, None) for o in data.get("orders") or []]
            page_token = data.get("next_page_token") or ""
            del data  # the raw page (with PII) goes no further than this function
            yield from projections
            if not page_token:
                return

    def order_changes(
        self, *, since: datetime, until: datetime, page_token: str = ""
    ) -> ChangePage:
        """One page of the order search over orders updated in [since, until), oldest change
        first, 100 a page. Pass the returned next_token back with the same window."""
        if _second(until) <= _second(since):
            return ChangePage(())
        params = {
            "page_size": str(ORDER_CHANGES_PAGE_SIZE),
            "sort_field": "update_time",
            "sort_order": "ASC",
        }
        if page_token:
            params["page_token"] = page_token
        body = {"update_time_ge": _second(since), "update_time_lt": _second(until)}
        data = self._call("POST", "/order/202309/orders/search", params=params, body=body)
        items = tuple(self._project(o, None) for o in data.get("orders") or [])
        token = str(data.get("next_page_token") or "")
        del data  # the raw page (with PII) goes no further than this function
        return ChangePage(items, token)

    def refund_changes(
        self, *, since: datetime, until: datetime, page_token: str = ""
    ) -> ChangePage:
        """One page of the Return & Refund API's return search, updated in [since, until).

        Only completed refunds count (return_status RETURN_OR_REFUND_REQUEST_COMPLETE, type
        REFUND or RETURN_AND_REFUND): asked for in the search and checked again here. Each
        becomes a RefundEvent with TikTok's return_id as refund_id, refund_amount.refund_total
        as the amount (the buyer's money back: subtotal, shipping and tax) and the return's
        update_time — when it completed — as posted_at. A return updated again later is served
        again with the same id."""
        if _second(until) <= _second(since):
            return ChangePage(())
        params = {
            "page_size": str(RETURNS_PAGE_SIZE),
            "sort_field": "update_time",
            "sort_order": "ASC",
        }
        if page_token:
            params["page_token"] = page_token
        body = {
            "update_time_ge": _second(since),
            "update_time_lt": _second(until),
            "return_status": [REFUND_COMPLETE],
            "return_types": list(REFUND_TYPES),
        }
        data = self._call("POST", "/return_refund/202309/returns/search", params=params, body=body)
        refunds = (_refund_event(r) for r in data.get("return_orders") or [])
        items = tuple(r for r in refunds if r is not None)
        token = str(data.get("next_page_token") or "")
        del data  # the raw page (with the buyer's words) goes no further than this function
        return ChangePage(items, token)

    # --- projection: the one place raw orders are read ---
    def _project(self, order: dict, match: BuyerHint | None) -> OrderProjection:
        payment = order.get("payment") or {}
        address = order.get("recipient_address") or {}
        status = str(order.get("status") or "")
        return OrderProjection(
            order_id=str(order.get("id")),
            channel_kind=self.kind,
            status=status,
            purchased_at=_when(order.get("create_time")),
            updated_at=_when(order.get("update_time")),
            total=_decimal(payment.get("total_amount")),
            currency=str(payment.get("currency") or ""),
            item_count=len(order.get("line_items") or []),  # one line item per unit
            cancelled=status == "CANCELLED",
            delivered=status in DELIVERED,
            buyer_match=compare_buyer(
                match, postal_code=address.get("postal_code"), email=order.get("buyer_email")
            ),
        )

    # --- the signed client ---
    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict | None = None,
        body: dict | None = None,
        shop_scoped: bool = True,
    ) -> dict:
        rejected = None
        for attempt in (1, 2):
            access = self._access_token(rejected=rejected)
            try:
                return self._send(method, path, access, params or {}, body, shop_scoped)
            except _TokenRejected as exc:
                if attempt == 2:
                    raise PermanentError(
                        "TikTok Shop keeps refusing fresh access tokens (code "
                        f"{exc.code}) — authorize the app again in TikTok Shop Seller Center."
                    ) from None
                rejected = access  # refresh once, even if our clock thinks it is still valid
        raise AssertionError("unreachable")

    def _send(self, method, path, access, params, body, shop_scoped) -> dict:
        query = {"app_key": self._app_key(), "timestamp": str(int(time.time())), **params}
        if shop_scoped:
            cipher = self.channel.config.get("shop_cipher")
            if not cipher:
                raise PermanentError(
                    "No TikTok shop is selected yet — run Save & Verify so Flash can discover "
                    "the shop cipher."
                )
            query["shop_cipher"] = cipher
        raw = json.dumps(body, separators=(",", ":")).encode() if body is not None else b""
        query["sign"] = sign_request(
            self._secret(self.channel, "app_secret", "app secret"), path, query, raw
        )
        headers = {"x-tts-access-token": access}
        if body is not None:
            headers["content-type"] = "application/json"
        response = self._http(method, self.api_base + path, params=query, data=raw, headers=headers)
        envelope = self._envelope(response)
        code = envelope.get("code")
        if code == 0:
            return envelope.get("data") or {}
        if code == SIGN_ERROR:
            raise PermanentError(
                "TikTok Shop rejected the request signature — check the app secret (Partner "
                "Center → App & Service → App secret)."
            )
        if code == INVALID_PARAMETER and params.get("page_token") and response.status_code < 500:
            # (Checked before the token codes: 36009003 is in their 360xxx range.) Our own
            # parameters are fixed and valid: what TikTok refuses is the page token
            # (expired, or not from this search).
            raise PageExpired(
                "TikTok Shop no longer accepts the page token of this search; start the window "
                "again from its first page."
            )
        if isinstance(code, int) and is_token_code(code):
            raise _TokenRejected(code)
        if code == SHOP_CIPHER_ERROR:
            raise PermanentError(
                "TikTok Shop does not accept the saved shop for this authorization — run Save & "
                "Verify again to rediscover the shop."
            )
        message = f"TikTok Shop refused the request (code {code})."
        if response.status_code >= 500:
            raise TemporaryError(message)
        raise PermanentError(message) if response.status_code >= 400 else ConnectorError(message)

    def _http(self, method: str, url: str, **kwargs) -> requests.Response:
        try:
            return self._session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.Timeout:
            raise TemporaryError(
                f"TikTok Shop did not answer within {self.timeout:g} s; it will be retried."
            ) from None
        except requests.RequestException as exc:
            raise TemporaryError(
                f"Could not reach TikTok Shop ({type(exc).__name__}); it will be retried."
            ) from None

    def _envelope(self, response: requests.Response) -> dict:
        if response.status_code == 429:
            raise RateLimited(
                "TikTok Shop asked Flash to slow down; it will be retried.",
                retry_after=_retry_after(response, default=1.0),
            )
        try:
            envelope = response.json()
        except ValueError:
            envelope = None
        if not isinstance(envelope, dict) or "code" not in envelope:
            raise TemporaryError(
                f"TikTok Shop answered with an unreadable response (HTTP {response.status_code});"
                " it will be retried."
            )
        if response.status_code >= 500:
            raise TemporaryError(
                f"TikTok Shop had an internal error (HTTP {response.status_code}); it will be "
                "retried."
            )
        return envelope

    # --- tokens ---
    def refresh_token(self) -> datetime | None:
        """Refresh now (the periodic task calls this before the access token expires, which
        also keeps the rotating refresh token alive). Returns the new expiry."""
        current = self.channel.secret(ACCESS)
        self._access_token(rejected=current)
        return self.channel.token_expires_at

    def _access_token(self, *, rejected: str | None = None) -> str:
        if not self._prefer_memory:  # Save & Verify always checks with the row (see tokens.py)
            fresh = usable_token(self.channel, margin=self.refresh_margin, rejected=rejected)
            if fresh:
                return fresh
        return ensure_token(
            self.channel,
            obtain=self._refresh,
            margin=self.refresh_margin,
            rejected=rejected,
            lineage="refresh_token",
            prefer_memory=self._prefer_memory,
        )

    def _refresh(self, source: Channel) -> TokenGrant:
        """One refresh call: TikTok answers with a new access token AND a new refresh token."""
        params = {
            "app_key": self._app_key(),
            "app_secret": self._secret(source, "app_secret", "app secret"),
            "refresh_token": self._secret(source, "refresh_token", "refresh token"),
            "grant_type": "refresh_token",
        }
        response = self._http("GET", self.auth_base + "/api/v2/token/refresh", params=params)
        envelope = self._envelope(response)
        code = envelope.get("code")
        if code == APP_ERROR:
            raise PermanentError(
                "TikTok Shop refused the app key or app secret — copy both again from Partner "
                "Center → App & Service."
            )
        if code == REFRESH_TOKEN_ERROR or (isinstance(code, int) and is_token_code(code)):
            raise PermanentError(
                "TikTok Shop refused the refresh token (expired, revoked or already used) — "
                "authorize the app again in TikTok Shop Seller Center and paste the new refresh "
                "token."
            )
        data = envelope.get("data") or {}
        if code != 0 or not data.get("access_token") or not data.get("refresh_token"):
            raise TemporaryError(f"TikTok Shop could not refresh the token (code {code}).")
        log.info("tiktok token refreshed for channel %s", self.channel.public_id)
        refresh_expiry = _when(data.get("refresh_token_expire_in"))
        return TokenGrant(
            access_token=data["access_token"],
            # Absolute Unix timestamps, not durations.
            expires_at=_when(data.get("access_token_expire_in"))
            or datetime.now(UTC) + timedelta(hours=1),
            refresh_token=data["refresh_token"],
            config={"refresh_token_expires_at": refresh_expiry.isoformat()}
            if refresh_expiry
            else {},
        )


def _second(moment: datetime) -> int:
    """The whole Unix second `moment` falls in (TikTok times are whole seconds)."""
    return math.floor(moment.timestamp())


def _refund_event(record: dict) -> RefundEvent | None:
    """A return_orders[] entry → RefundEvent, if it is a completed refund that gave money back."""
    if not isinstance(record, dict):
        return None
    if record.get("return_status") != REFUND_COMPLETE:
        return None
    if record.get("return_type") not in REFUND_TYPES:
        return None
    money = record.get("refund_amount") or {}
    amount = _decimal(money.get("refund_total")) if isinstance(money, dict) else None
    if not record.get("return_id") or not record.get("order_id") or not amount or amount <= 0:
        return None
    return RefundEvent(
        order_id=str(record["order_id"]),
        refund_id=str(record["return_id"]),
        amount=amount,
        currency=str(money.get("currency") or ""),
        posted_at=_when(record.get("update_time")),
    )


def _when(value) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value), UTC) if value else None
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _decimal(value) -> Decimal | None:
    try:
        return Decimal(str(value)) if value not in (None, "") else None
    except InvalidOperation:
        return None


def _retry_after(response: requests.Response, *, default: float) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", default)))
    except ValueError:
        return default
