"""Amazon adapter: SP-API through `python-amazon-sp-api` (Orders API version 2026-01-01).

What the library needs to be told (see PLATFORMS.md):
- the endpoint is set on each client after construction (the emulator or a sandbox);
- the LWA URL comes from a subclass of `AccessTokenClient`, passed as `auth_token_client_class`;
- its module-level token cache is keyed by the refresh token only (10 entries), so this adapter
  caches access tokens itself, keyed by LWA URL + client id + secret + refresh token;
- a non-JSON 5xx comes back as an empty response without raising: treated as temporary.

Only PROCEEDS and FULFILLMENT are asked for, which keeps buyer and recipient PII out of the
response altogether: Amazon offers no buyer data to compare a hint with (BuyerMatch.UNAVAILABLE).

Claw-back windows (`order_changes`, `refund_changes`) cover [since, until): times are sent to
the millisecond (truncated). Amazon's own bounds are "at or after" for both searches' start,
"at or before" for searchOrders' lastUpdatedBefore (so an order updated exactly at `until` may be
served by two adjacent windows — harmless, items are keyed by order id) and "before, not at" for
listFinancialEvents' PostedBefore. Amazon serves changes only up to about two minutes ago: a
window ending later than that is answered as TemporaryError with the wait in `retry_after`, never
silently cut short, so a caller that moves its watermark to `until` loses nothing.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

import certifi
import httpx
from django.conf import settings
from sp_api.api import Finances, Orders, Sellers
from sp_api.auth import AccessTokenClient, AccessTokenResponse
from sp_api.auth.exceptions import AuthorizationError
from sp_api.base import Marketplaces
from sp_api.base._transport_httpx import HttpxTransport
from sp_api.base.credential_provider import FromCodeCredentialProvider, MissingCredentials
from sp_api.base.exceptions import (
    SellingApiBadRequestException,
    SellingApiException,
    SellingApiForbiddenException,
    SellingApiNotFoundException,
    SellingApiRequestThrottledException,
)

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

log = logging.getLogger(__name__)

ORDERS_VERSION = "2026-01-01"
FINANCES_VERSION = "v0"
INCLUDED_DATA = ["PROCEEDS", "FULFILLMENT"]
PAGE_SIZE = 100  # the most searchOrders and listFinancialEvents serve per page
# Amazon serves orders and financial events only up to two minutes before the request.
SETTLE_LAG = timedelta(minutes=2)
DEFAULT_LWA_URL = "https://api.amazon.com/auth/o2/token"
REGIONS = {"na": Marketplaces.US, "eu": Marketplaces.UK, "fe": Marketplaces.JP}
# Published usage plans (requests per second): the wait after a 429 when no header says.
RATES = {
    "getOrder": 0.5,
    "searchOrders": 0.0056,
    "getMarketplaceParticipations": 0.016,
    "listFinancialEvents": 0.5,
}


def default_endpoint(region: str) -> str:
    return f"https://sellingpartnerapi-{region}.amazon.com"


# --- access tokens, cached here rather than in sp_api's 10-entry, refresh-token-keyed cache ---
_tokens: dict[str, tuple[str, float]] = {}
_tokens_lock = threading.Lock()
_TOKEN_CACHE_SIZE = 1000


def clear_token_cache() -> None:
    with _tokens_lock:
        _tokens.clear()


def _cached(key: str) -> str | None:
    with _tokens_lock:
        hit = _tokens.get(key)
        return hit[0] if hit and hit[1] > time.time() else None


def _remember(key: str, token: str, expires_in: float) -> None:
    with _tokens_lock:
        now = time.time()
        if len(_tokens) >= _TOKEN_CACHE_SIZE:
            for stale in [k for k, (_, exp) in _tokens.items() if exp <= now] or list(_tokens)[:1]:
                del _tokens[stale]
        _tokens[key] = (token, now + max(0.0, expires_in - 60))


def _forget(key: str) -> None:
    with _tokens_lock:
        _tokens.pop(key, None)


@functools.cache
def _tls() -> ssl.SSLContext:
    # httpx builds a TLS context per client (~40 ms); sp_api makes two clients per call.
    return ssl.create_default_context(cafile=certifi.where())


class _LwaUnreadable(Exception):
    def __init__(self, status: int):
        self.status = status


def _lwa_client_class(lwa_url: str, timeout: float) -> type[AccessTokenClient]:
    parts = urlsplit(lwa_url)

    class LwaClient(AccessTokenClient):
        scheme = f"{parts.scheme}://"
        host = parts.netloc
        path = parts.path or "/auth/o2/token"

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._transport.close()
            self._transport = HttpxTransport(timeout=timeout, verify=_tls())

        @property
        def cache_key(self) -> str:
            material = "\n".join(
                [lwa_url, self.cred.client_id, self.cred.client_secret, self.cred.refresh_token]
            )
            return hashlib.sha256(material.encode()).hexdigest()

        def get_auth(self) -> AccessTokenResponse:
            token = _cached(self.cache_key)
            if token:
                return AccessTokenResponse(access_token=token, token_type="bearer")
            data = self._request(self.scheme + self.host + self.path, self.data, self.headers)
            _remember(self.cache_key, data["access_token"], float(data.get("expires_in") or 3600))
            return AccessTokenResponse(**data)

        def _request(self, url, data, headers):
            response = self._transport.request("POST", url, data=data, headers=headers)
            try:
                body = response.json()
            except ValueError:
                raise _LwaUnreadable(response.status_code) from None
            if response.status_code != 200 or not isinstance(body, dict):
                body = body if isinstance(body, dict) else {}
                raise AuthorizationError(
                    body.get("error"), body.get("error_description"), response.status_code
                )
            if not body.get("access_token"):
                raise _LwaUnreadable(response.status_code)
            return body

    return LwaClient


class AmazonConnector:
    kind = "amazon"
    order_number_pattern = r"^\d{3}-\d{7}-\d{7}$"
    config_fields = (
        ConfigField(
            "client_id",
            "LWA client id",
            help="Developer Central → your app → LWA credentials (amzn1.application-oa2-client.…).",
        ),
        ConfigField("region", "Region", default="na", help="na, eu or fe."),
        ConfigField(
            "marketplace_ids",
            "Marketplace ids",
            required=False,
            help="Such as ATVPDKIKX0DER. Leave empty to use every marketplace the seller sells in.",
        ),
        ConfigField(
            "endpoint",
            "SP-API endpoint",
            required=False,
            help="Default https://sellingpartnerapi-{na,eu,fe}.amazon.com by region; change "
            "only for a sandbox or the local emulator.",
        ),
        ConfigField(
            "lwa_url",
            "LWA token URL",
            required=False,
            default=DEFAULT_LWA_URL,
            help="Change only for the local emulator.",
        ),
    )
    secret_fields = (
        ConfigField(
            "client_secret",
            "LWA client secret",
            help="Developer Central → LWA credentials. Amazon makes you rotate it every 180 days.",
        ),
        ConfigField(
            "refresh_token",
            "Refresh token",
            help="Seller Central → Apps → Authorize (Atzr|…). Re-authorize every 365 days.",
        ),
    )

    def __init__(self, channel: Channel, *, timeout: float | None = None):
        self.channel = channel
        self.timeout = timeout or getattr(settings, "CHANNEL_HTTP_TIMEOUT", 10.0)

    # --- configuration ---
    @property
    def region(self) -> str:
        region = self.channel.config.get("region") or "na"
        if region not in REGIONS:
            raise PermanentError(f"Amazon region '{region}' is not na, eu or fe.")
        return region

    @property
    def endpoint(self) -> str:
        return (self.channel.config.get("endpoint") or default_endpoint(self.region)).rstrip("/")

    @property
    def lwa_url(self) -> str:
        return self.channel.config.get("lwa_url") or DEFAULT_LWA_URL

    @property
    def marketplace_ids(self) -> list[str]:
        value = self.channel.config.get("marketplace_ids") or []
        return value.replace(",", " ").split() if isinstance(value, str) else list(value)

    def _credentials(self) -> dict:
        client_id = self.channel.config.get("client_id")
        secret = (
            self.channel.secret("client_secret")
            if "client_secret" in self.channel.sealed_secrets
            else None
        )
        refresh = (
            self.channel.secret("refresh_token")
            if "refresh_token" in self.channel.sealed_secrets
            else None
        )
        for value, label in ((client_id, "LWA client id"), (secret, "LWA client secret")):
            if not value:
                raise PermanentError(f"The Amazon {label} is missing — enter it in Online Shop.")
        if not refresh:
            raise PermanentError("The Amazon refresh token is missing — enter it in Online Shop.")
        return {"refresh_token": refresh, "lwa_app_id": client_id, "lwa_client_secret": secret}

    # --- the contract ---
    def check(self) -> ConnectionCheck:
        """Save & Verify: the marketplaces the seller participates in."""
        response = self._run(
            Sellers, "getMarketplaceParticipations", lambda c: c.get_marketplace_participation()
        )
        payload = response.payload
        if not isinstance(payload, list):
            raise _empty()
        found = []
        for entry in payload:
            market = entry.get("marketplace") or {}
            participation = entry.get("participation") or {}
            found.append(
                {
                    "id": market.get("id"),
                    "name": market.get("name"),
                    "country": market.get("countryCode"),
                    "currency": market.get("defaultCurrencyCode"),
                    "participating": bool(participation.get("isParticipating")),
                    "store_name": entry.get("storeName") or "",
                }
            )
        active = [m for m in found if m["participating"]]
        if not active:
            raise PermanentError(
                "This seller participates in no Amazon marketplace with these credentials."
            )
        names = ", ".join(f"{m['name']} ({m['country']})" for m in active)
        unknown = [mid for mid in self.marketplace_ids if mid not in {m["id"] for m in active}]
        if unknown:
            raise PermanentError(
                f"The seller does not sell in marketplace {', '.join(unknown)}; it sells in "
                f"{names}. Correct the marketplace ids."
            )
        discovered = {} if self.marketplace_ids else {"marketplace_ids": [m["id"] for m in active]}
        return ConnectionCheck(
            summary=f"Amazon marketplaces: {names}.",
            details={"marketplaces": active},
            discovered_config=discovered,
        )

    def fetch_order(self, order_number: str, *, match: BuyerHint | None = None) -> OrderProjection:
        number = (order_number or "").strip()
        if not re.match(self.order_number_pattern, number):
            raise OrderNotFound(
                f"'{number}' is not an Amazon order number (such as 112-1234567-1234567)."
            )
        response = self._run(
            Orders,
            "getOrder",
            lambda c: c.get_order(number, includedData=INCLUDED_DATA),
            not_found=f"Amazon has no order {number} for this seller.",
        )
        order = response.payload.get("order") if isinstance(response.payload, dict) else None
        if not isinstance(order, dict):
            raise _empty()
        return self._project(order, match)

    def changed_orders(self, since: datetime) -> Iterator[OrderProjection]:
        """Orders updated at or after `since` (claw-back), page by page."""
        params = {
            "lastUpdatedAfter": since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "includedData": INCLUDED_DATA,
            "maxResultsPerPage": 100,
            "marketplaceIds": self.marketplace_ids or [REGIONS[self.region].marketplace_id],
        }
        token = None
        while True:
            page = dict(params, paginationToken=token) if token else dict(params)
            response = self._run(Orders, "searchOrders", lambda c, p=page: c.search_orders(**p))
            payload = response.payload if isinstance(response.payload, dict) else {}
            if not isinstance(payload.get("orders"), list):
                raise _empty()
            projections = [self._project(o, None) for o in payload["orders"]]
            token = response.next_token  # the library lifts `pagination` out of the payload
            del payload, response
            yield from projections
            if not token:
                return

    def order_changes(
        self, *, since: datetime, until: datetime, page_token: str = ""
    ) -> ChangePage:
        """One page of searchOrders over orders updated in [since, until) (claw-back).

        lastUpdatedAfter=since, lastUpdatedBefore=until, 100 a page, PROCEEDS and FULFILLMENT
        only (no PII). Pass the returned next_token back with the same window to continue."""
        if until <= since:
            return ChangePage(())
        params = {
            "lastUpdatedAfter": _stamp(since),
            "lastUpdatedBefore": _stamp(until),
            "includedData": INCLUDED_DATA,
            "maxResultsPerPage": PAGE_SIZE,
            "marketplaceIds": self.marketplace_ids or [REGIONS[self.region].marketplace_id],
        }
        if page_token:
            params["paginationToken"] = page_token
        response = self._run(
            Orders,
            "searchOrders",
            lambda c: c.search_orders(**params),
            bad_request=lambda exc: _window_refused(exc, until, page_token, "order changes"),
        )
        payload = response.payload if isinstance(response.payload, dict) else {}
        if not isinstance(payload.get("orders"), list):
            raise _empty()
        # If Amazon cut the window short (it only serves changes older than ~2 minutes), this
        # page is not all of [since, until): say when to come back rather than lose the rest.
        settled = _iso(payload.get("lastUpdatedBefore"))
        if settled is not None and settled < until - timedelta(seconds=1):
            raise _unsettled("order changes", (until - settled).total_seconds())
        items = tuple(self._project(o, None) for o in payload["orders"])
        token = str(response.next_token or "")
        del payload, response  # the raw page goes no further than this function
        return ChangePage(items, token)

    def refund_changes(
        self, *, since: datetime, until: datetime, page_token: str = ""
    ) -> ChangePage:
        """One page of the Finances API's listFinancialEvents posted in [since, until).

        Only RefundEventList is read; each refund event becomes one RefundEvent:
        - amount: the buyer's money given back — minus the sum of the event's charge
          adjustments (ItemChargeAdjustmentList: Principal, Tax, ShippingCharge, ShippingTax,
          GiftWrap…, RestockingFee counting against it; plus OrderChargeAdjustmentList) and
          promotion adjustments (a reversed promotion was never the buyer's money). The seller's
          fee adjustments (commission returned, refund commission) are not the buyer's money and
          are left out. Events that give nothing back (zero or less) are skipped.
        - refund_id: Amazon gives a refund event no id of its own, so one is derived from what
          identifies it: order id, PostedDate and the sorted OrderAdjustmentItemIds (an
          adjustment without one contributes its item id, SKU, quantity and charges). Reading
          the same event again gives the same id; two refunds of one order differ in their
          adjustment item ids (assumed unique per refund, as Amazon documents them).
        - currency: that of the event's first charge; charges in another currency (not seen
          on Amazon, where an order has one currency) are ignored.
        """
        if until <= since:
            return ChangePage(())
        params = {
            "PostedAfter": _stamp(since),
            "PostedBefore": _stamp(until),
            "MaxResultsPerPage": PAGE_SIZE,
        }
        if page_token:
            params["NextToken"] = page_token
        response = self._run(
            Finances,
            "listFinancialEvents",
            lambda c: c.list_financial_events(**params),
            bad_request=lambda exc: _window_refused(exc, until, page_token, "refunds"),
        )
        payload = response.payload if isinstance(response.payload, dict) else {}
        events = payload.get("FinancialEvents")
        if not isinstance(events, dict):
            raise _empty()
        refunds = (_refund_event(e) for e in events.get("RefundEventList") or [])
        items = tuple(r for r in refunds if r is not None)
        token = str(response.next_token or "")
        del payload, events, response  # the raw page goes no further than this function
        return ChangePage(items, token)

    def _project(self, order: dict, match: BuyerHint | None) -> OrderProjection:
        grand = (order.get("proceeds") or {}).get("grandTotal") or {}
        status = str((order.get("fulfillment") or {}).get("fulfillmentStatus") or "")
        return OrderProjection(
            order_id=str(order.get("orderId")),
            channel_kind=self.kind,
            status=status,
            purchased_at=_iso(order.get("createdTime")),
            updated_at=_iso(order.get("lastUpdatedTime")),
            total=_decimal(grand.get("amount")),
            currency=str(grand.get("currencyCode") or ""),
            item_count=sum(
                int(i.get("quantityOrdered") or 0) for i in order.get("orderItems") or []
            ),
            marketplace=str((order.get("salesChannel") or {}).get("marketplaceId") or ""),
            cancelled=status == "CANCELLED",
            # The Orders API stops at SHIPPED; delivery is only in the PACKAGES dataset.
            delivered=False,
            buyer_match=compare_buyer(match),  # no PII was asked for: nothing to compare
        )

    # --- calling the library, and turning its outcomes into our errors ---
    def _run(
        self,
        api: type,
        operation: str,
        call: Callable,
        *,
        not_found: str = "",
        bad_request: Callable[[SellingApiException], ConnectorError] | None = None,
    ):
        credentials = self._credentials()
        lwa_class = _lwa_client_class(self.lwa_url, self.timeout)
        versions = {Orders: ORDERS_VERSION, Finances: FINANCES_VERSION}
        for attempt in (1, 2):
            kwargs = {"version": versions[api]} if api in versions else {}
            try:
                client = api(
                    REGIONS[self.region],
                    credentials=credentials,
                    credential_providers=[FromCodeCredentialProvider],
                    auth_token_client_class=lwa_class,
                    timeout=self.timeout,
                    verify=_tls(),
                    **kwargs,
                )
            except MissingCredentials:
                raise PermanentError("Amazon credentials are incomplete.") from None
            client.endpoint = self.endpoint  # after construction, as the library expects
            try:
                return call(client)
            except SellingApiForbiddenException:
                # The access token may have been revoked early: drop it and get a new one once.
                _forget(client._auth.cache_key)
                if attempt == 2:
                    raise PermanentError(
                        "Amazon denied access with these credentials — check that the app has the "
                        "Orders role and that the seller still authorizes it (Seller Central → "
                        "Apps → Manage your apps)."
                    ) from None
            except SellingApiRequestThrottledException as exc:
                raise RateLimited(
                    "Amazon's rate limit for this seller is reached; it will be retried.",
                    retry_after=_retry_after(exc.headers, operation),
                ) from None
            except SellingApiNotFoundException:
                raise OrderNotFound(not_found or "Amazon found nothing there.") from None
            except SellingApiBadRequestException as exc:
                if not_found:
                    raise OrderNotFound(not_found) from None
                if bad_request:
                    raise bad_request(exc) from None
                raise ConnectorError(f"Amazon refused the request: {_first_message(exc)}") from None
            except SellingApiException as exc:
                raise TemporaryError(
                    f"Amazon had an internal error ({_first_message(exc)}); it will be retried."
                ) from None
            except AuthorizationError as exc:
                raise _lwa_error(exc) from None
            except _LwaUnreadable as exc:
                raise TemporaryError(
                    f"Login with Amazon answered unreadably (HTTP {exc.status}); it will be "
                    "retried."
                ) from None
            except httpx.TimeoutException:
                raise TemporaryError(
                    f"Amazon did not answer within {self.timeout:g} s; it will be retried."
                ) from None
            except httpx.HTTPError as exc:
                raise TemporaryError(
                    f"Could not reach Amazon ({type(exc).__name__}); it will be retried."
                ) from None
            finally:
                client._auth._transport.close()
                client.close()
        raise AssertionError("unreachable")


def _lwa_error(exc: AuthorizationError) -> ConnectorError:
    status, code = exc.status_code, exc.error_code
    if status == 429:
        return RateLimited("Login with Amazon is rate limiting; it will be retried.", retry_after=1)
    if status >= 500:
        return TemporaryError("Login with Amazon had an internal error; it will be retried.")
    if code == "invalid_client" or status == 401:
        return PermanentError(
            "Amazon rejected the LWA client id or client secret — copy them again from Developer "
            "Central (the client secret must be rotated every 180 days)."
        )
    if code == "invalid_grant":
        return PermanentError(
            "The refresh token was rejected by Amazon — authorize the app again in Seller Central."
        )
    return PermanentError(f"Login with Amazon refused the credentials ({code or status}).")


def _retry_after(headers, operation: str) -> float:
    headers = headers or {}
    try:
        if headers.get("Retry-After"):
            return max(0.0, float(headers["Retry-After"]))
        rate = float(headers.get("x-amzn-RateLimit-Limit") or 0)
    except (TypeError, ValueError):
        rate = 0.0
    rate = rate or RATES.get(operation, 0.5)
    return round(1 / rate, 3)


def _first_message(exc: SellingApiException) -> str:
    return str(getattr(exc, "amzn_code", "") or getattr(exc, "message", "") or "no details")


def _stamp(moment: datetime) -> str:
    """ISO 8601 in UTC to the millisecond (truncated), as SP-API takes date-times."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _unsettled(what: str, wait: float) -> TemporaryError:
    return TemporaryError(
        f"Amazon serves {what} only up to about two minutes ago and this window ends later; "
        "it will be retried.",
        retry_after=round(max(1.0, wait), 3),
    )


def _window_refused(
    exc: SellingApiException, until: datetime, page_token: str, what: str
) -> ConnectorError:
    """A 400 on a window search: a refused page token, a window ending too recently, or else."""
    if page_token:
        # The rest of the window was accepted on the first page: it is the token Amazon refuses
        # (expired — searchOrders' last 24 hours — or not from this search).
        return PageExpired(
            f"Amazon no longer accepts the page token of this search for {what}; start the "
            "window again from its first page."
        )
    wait = (until + SETTLE_LAG - datetime.now(UTC)).total_seconds()
    if wait > 0:
        return _unsettled(what, wait)
    return ConnectorError(f"Amazon refused the search for {what}: {_first_message(exc)}")


def _refund_event(event: dict) -> RefundEvent | None:
    """A RefundEventList entry (a ShipmentEvent) → RefundEvent; None if it gives nothing back."""
    if not isinstance(event, dict) or not event.get("AmazonOrderId"):
        return None
    order_id = str(event["AmazonOrderId"])
    currency, total, keys = "", Decimal("0"), []

    def add(money) -> list:
        nonlocal currency, total
        money = money if isinstance(money, dict) else {}
        amount = _decimal(money.get("CurrencyAmount"))
        code = str(money.get("CurrencyCode") or "")
        if amount is None or not code:
            return []
        currency = currency or code
        if code == currency:
            total += amount
        return [code, str(amount)]

    for charge in event.get("OrderChargeAdjustmentList") or []:
        add((charge or {}).get("ChargeAmount"))
    for item in event.get("ShipmentItemAdjustmentList") or []:
        item = item if isinstance(item, dict) else {}
        seen = []
        for charge in item.get("ItemChargeAdjustmentList") or []:
            seen += [(charge or {}).get("ChargeType"), *add((charge or {}).get("ChargeAmount"))]
        for promotion in item.get("PromotionAdjustmentList") or []:
            seen += [*add((promotion or {}).get("PromotionAmount"))]
        adjustment_id = item.get("OrderAdjustmentItemId")
        keys.append(
            str(adjustment_id)
            if adjustment_id
            else json.dumps(
                [
                    item.get("OrderItemId"),
                    item.get("SellerSKU"),
                    item.get("QuantityShipped"),
                    seen,
                ],
                default=str,
            )
        )
    refunded = -total
    if refunded <= 0:
        return None
    posted = str(event.get("PostedDate") or "")
    digest = hashlib.sha256(
        json.dumps([order_id, posted, sorted(keys)], separators=(",", ":")).encode()
    ).hexdigest()
    return RefundEvent(
        order_id=order_id,
        refund_id=f"{order_id}:{digest[:24]}",
        amount=refunded,
        currency=currency,
        posted_at=_iso(posted),
    )


def _empty() -> TemporaryError:
    return TemporaryError(
        "Amazon answered with an empty or unreadable response; it will be retried."
    )


def _iso(value) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None
    except ValueError:
        return None


def _decimal(value) -> Decimal | None:
    try:
        return Decimal(str(value)) if value not in (None, "") else None
    except InvalidOperation:
        return None
