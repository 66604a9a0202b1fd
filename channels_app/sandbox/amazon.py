"""Amazon Selling Partner API emulator: Login with Amazon, Sellers, Orders (v2026-01-01 and v0).

Served under `<base>/amazon`; the LWA token endpoint is `<base>/amazon/auth/o2/token`. The seller
is whoever the access token was issued to: an order of another seller answers 404, exactly as an
unknown order id does."""

from __future__ import annotations

import base64
import json
import random
import re
import time
from dataclasses import dataclass, field
from decimal import Decimal

from .core import (
    Fault,
    Request,
    Response,
    TokenBucket,
    html_500,
    iso,
    json_response,
    parse_iso,
    token,
)

PLATFORM = "amazon"

MARKETPLACES = {
    "ATVPDKIKX0DER": ("Amazon.com", "US", "USD", "en_US", "www.amazon.com"),
    "A2EUQ1WTGCTBG2": ("Amazon.ca", "CA", "CAD", "en_CA", "www.amazon.ca"),
    "A1AM78C64UM0Y8": ("Amazon.com.mx", "MX", "MXN", "es_MX", "www.amazon.com.mx"),
    "A1F83G8C2ARO7P": ("Amazon.co.uk", "GB", "GBP", "en_GB", "www.amazon.co.uk"),
    "A1PA6795UKMFR9": ("Amazon.de", "DE", "EUR", "de_DE", "www.amazon.de"),
    "A1VC38T7YXB528": ("Amazon.co.jp", "JP", "JPY", "ja_JP", "www.amazon.co.jp"),
}

# The published usage plans (rate per second, burst), per seller and operation.
DEFAULT_LIMITS = {
    "getOrder": (0.5, 30),
    "getOrderV0": (0.5, 30),
    "searchOrders": (0.0056, 20),
    "getMarketplaceParticipations": (0.016, 15),
}

# 2026-01-01 fulfillmentStatus → v0 OrderStatus
V0_STATUS = {
    "PENDING_AVAILABILITY": "PendingAvailability",
    "PENDING": "Pending",
    "UNSHIPPED": "Unshipped",
    "PARTIALLY_SHIPPED": "PartiallyShipped",
    "SHIPPED": "Shipped",
    "CANCELLED": "Canceled",
    "UNFULFILLABLE": "Unfulfillable",
}
ORDER_ID = re.compile(r"^\d{3}-\d{7}-\d{7}$")
ACCESS_TOKEN_TTL = 3600


@dataclass
class AmazonApp:
    client_id: str
    client_secret: str


@dataclass
class AmazonSeller:
    seller_id: str
    name: str
    client_id: str  # the LWA app the seller authorized
    refresh_token: str
    marketplace_ids: list[str]
    store_name: str = ""
    revoked: bool = False


@dataclass
class AmazonItem:
    asin: str
    sku: str
    title: str
    quantity: int
    price: Decimal


@dataclass
class AmazonOrder:
    order_id: str
    seller_id: str
    marketplace_id: str
    created: float
    updated: float
    status: str  # a 2026-01-01 fulfillmentStatus
    total: Decimal
    currency: str
    items: list[AmazonItem]
    buyer: dict = field(default_factory=dict)  # PII: only with includedData=BUYER
    recipient: dict = field(default_factory=dict)  # PII: only with includedData=RECIPIENT
    fulfilled_by: str = "MERCHANT"
    # Refunds live in the Finances API, not in Orders: kept here for the demo, never served.
    refunded: Decimal = Decimal("0")


class AmazonEmulator:
    def __init__(self, sandbox):
        self.sb = sandbox
        self.apps: dict[str, AmazonApp] = {}
        self.sellers: dict[str, AmazonSeller] = {}
        self.orders: dict[str, AmazonOrder] = {}
        self.access_tokens: dict[str, tuple[str, float]] = {}  # token → (seller id, expiry)
        self.limits = dict(DEFAULT_LIMITS)
        self.buckets: dict[tuple[str, str], TokenBucket] = {}
        # searchOrders only sees changes older than this (Amazon's own lag is about 2 minutes).
        self.search_lag_seconds = 0.0

    # --- state helpers used by seed_demo, tests and the control API ---
    def add_app(self, client_id: str, client_secret: str) -> AmazonApp:
        with self.sb.lock:
            app = self.apps[client_id] = AmazonApp(client_id, client_secret)
            return app

    def add_seller(self, **kwargs) -> AmazonSeller:
        with self.sb.lock:
            seller = AmazonSeller(**kwargs)
            self.sellers[seller.seller_id] = seller
            return seller

    def add_order(self, *, seller_id: str, **kwargs) -> AmazonOrder:
        with self.sb.lock:
            now = time.time()
            seller = self.sellers[seller_id]
            kwargs.setdefault("order_id", self._new_order_id())
            kwargs.setdefault("marketplace_id", seller.marketplace_ids[0])
            kwargs.setdefault("created", now)
            kwargs.setdefault("updated", kwargs["created"])
            kwargs.setdefault("status", "UNSHIPPED")
            kwargs.setdefault("currency", MARKETPLACES[kwargs["marketplace_id"]][2])
            items = [
                item if isinstance(item, AmazonItem) else AmazonItem(**item)
                for item in kwargs.pop("items", None)
                or [AmazonItem("B0CX23V2ZK", "DEMO-SKU-1", "Demo item", 1, Decimal("25.00"))]
            ]
            kwargs.setdefault("total", sum((i.price * i.quantity for i in items), Decimal("0")))
            kwargs["total"] = Decimal(str(kwargs["total"]))
            order = AmazonOrder(seller_id=seller_id, items=items, **kwargs)
            self.orders[order.order_id] = order
            return order

    def _new_order_id(self) -> str:
        while True:
            candidate = (
                f"{random.randint(111, 999)}-{random.randint(0, 9999999):07d}-"
                f"{random.randint(0, 9999999):07d}"
            )
            if candidate not in self.orders:
                return candidate

    def touch(self, order_id: str, **changes) -> AmazonOrder:
        with self.sb.lock:
            order = self.orders[order_id]
            for key, value in changes.items():
                setattr(order, key, value)
            order.updated = max(time.time(), order.updated + 0.001)
            return order

    def expire_access_tokens(self) -> None:
        with self.sb.lock:
            for key, (seller, _) in list(self.access_tokens.items()):
                self.access_tokens[key] = (seller, 0.0)

    def set_rate_limit(self, operation: str, rate: float, burst: int) -> None:
        with self.sb.lock:
            self.limits[operation] = (rate, burst)
            for key in [k for k in self.buckets if k[1] == operation]:
                del self.buckets[key]

    # --- HTTP ---
    def handle(self, req: Request) -> Response:
        if req.path == "/auth/o2/token" and req.method == "POST":
            return self._token(req)
        routes = [
            ("GET", r"^/sellers/v1/marketplaceParticipations$", "getMarketplaceParticipations"),
            ("GET", r"^/orders/2026-01-01/orders$", "searchOrders"),
            ("GET", r"^/orders/2026-01-01/orders/([^/]+)$", "getOrder"),
            ("GET", r"^/orders/v0/orders/([^/]+)$", "getOrderV0"),
        ]
        for method, pattern, operation in routes:
            match = re.match(pattern, req.path)
            if match and req.method == method:
                return self._api(req, operation, *match.groups())
        return _errors(404, "NotFound", "Resource not found.")

    def _token(self, req: Request) -> Response:
        fault = self.sb.enter(PLATFORM, "lwaToken")
        if fault:
            rendered = self._render_fault(fault, token_endpoint=True)
            if rendered:
                return rendered
        form = req.form()
        with self.sb.lock:
            app = self.apps.get(form.get("client_id", ""))
            if app is None or app.client_secret != form.get("client_secret"):
                return json_response(
                    401,
                    {
                        "error": "invalid_client",
                        "error_description": "Client authentication failed",
                    },
                )
            if form.get("grant_type") != "refresh_token":
                return json_response(
                    400,
                    {
                        "error": "unsupported_grant_type",
                        "error_description": "The authorization grant type is not supported",
                    },
                )
            seller = next(
                (
                    s
                    for s in self.sellers.values()
                    if s.refresh_token == form.get("refresh_token") and s.client_id == app.client_id
                ),
                None,
            )
            if seller is None or seller.revoked or (fault and fault.mode == "revoked"):
                return _invalid_grant()
            access = token("Atza|", 48)
            self.access_tokens[access] = (seller.seller_id, time.time() + ACCESS_TOKEN_TTL)
        return json_response(
            200,
            {
                "access_token": access,
                "refresh_token": seller.refresh_token,
                "token_type": "bearer",
                "expires_in": ACCESS_TOKEN_TTL,
            },
        )

    def _api(self, req: Request, operation: str, *args) -> Response:
        fault = self.sb.enter(PLATFORM, operation)
        rate = self.limits[operation][0]
        limit_header = [("x-amzn-RateLimit-Limit", f"{rate:g}")]
        if fault:
            rendered = self._render_fault(fault, rate_header=limit_header)
            if rendered:
                return rendered
        with self.sb.lock:
            seller_id, expiry = self.access_tokens.get(
                req.headers.get("x-amz-access-token", ""), ("", 0.0)
            )
            seller = self.sellers.get(seller_id)
            if seller is None or expiry < time.time() or seller.revoked:
                return _errors(
                    403,
                    "Unauthorized",
                    "Access to requested resource is denied.",
                    "The access token you provided is revoked, malformed or invalid."
                    if seller is None or seller.revoked
                    else "The access token you provided has expired.",
                )
            if fault and fault.mode == "revoked":
                return _errors(
                    403,
                    "Unauthorized",
                    "Access to requested resource is denied.",
                    "The access token you provided is revoked, malformed or invalid.",
                )
            bucket = self.buckets.get((seller_id, operation))
            if bucket is None:
                bucket = self.buckets[(seller_id, operation)] = TokenBucket(*self.limits[operation])
            if not bucket.take():
                self.sb.meter.throttle(PLATFORM, operation)
                return _errors(
                    429,
                    "QuotaExceeded",
                    "You exceeded your quota for the requested resource.",
                    headers=limit_header,
                )
            handler = getattr(self, "_" + operation)
            response = handler(req, seller, *args)
        response.headers.extend(limit_header)
        return response

    def _render_fault(self, fault: Fault, *, rate_header=(), token_endpoint=False):
        if fault.mode == "429":
            return _errors(
                429,
                "QuotaExceeded",
                "You exceeded your quota for the requested resource.",
                headers=list(rate_header),
            )
        if fault.mode == "500":
            if token_endpoint:
                return json_response(
                    500,
                    {"error": "ServerError", "error_description": "Internal server error"},
                )
            return _errors(
                500, "InternalFailure", "We encountered an internal error. Please try again."
            )
        if fault.mode == "non_json_500":
            return html_500()
        return None  # "slow" already slept; "revoked" is decided with the credentials

    def _getMarketplaceParticipations(self, req, seller: AmazonSeller) -> Response:
        payload = []
        for mid in seller.marketplace_ids:
            name, country, currency, language, domain = MARKETPLACES[mid]
            payload.append(
                {
                    "marketplace": {
                        "id": mid,
                        "name": name,
                        "countryCode": country,
                        "defaultCurrencyCode": currency,
                        "defaultLanguageCode": language,
                        "domainName": domain,
                    },
                    "participation": {"isParticipating": True, "hasSuspendedListings": False},
                    "storeName": seller.store_name or seller.name,
                }
            )
        return json_response(200, {"payload": payload})

    def _getOrder(self, req: Request, seller: AmazonSeller, order_id: str) -> Response:
        order = self._owned(seller, order_id)
        if isinstance(order, Response):
            return order
        included = _included(req)
        if included is None:
            return _errors(400, "InvalidInput", "Invalid includedData value.")
        return json_response(200, {"order": self._order_2026(order, included)})

    def _getOrderV0(self, req: Request, seller: AmazonSeller, order_id: str) -> Response:
        order = self._owned(seller, order_id)
        if isinstance(order, Response):
            return order
        shipped = sum(i.quantity for i in order.items) if order.status == "SHIPPED" else 0
        payload = {
            "AmazonOrderId": order.order_id,
            "PurchaseDate": iso(order.created),
            "LastUpdateDate": iso(order.updated),
            "OrderStatus": V0_STATUS[order.status],
            "FulfillmentChannel": "MFN" if order.fulfilled_by == "MERCHANT" else "AFN",
            "SalesChannel": MARKETPLACES[order.marketplace_id][0],
            "OrderTotal": {"CurrencyCode": order.currency, "Amount": f"{order.total:.2f}"},
            "NumberOfItemsShipped": shipped,
            "NumberOfItemsUnshipped": sum(i.quantity for i in order.items) - shipped,
            "PaymentMethod": "Other",
            "MarketplaceId": order.marketplace_id,
            "ShipmentServiceLevelCategory": "Standard",
            "OrderType": "StandardOrder",
            "IsBusinessOrder": False,
            "IsPrime": False,
            "IsReplacementOrder": "false",
        }
        return json_response(200, {"payload": payload})

    def _searchOrders(self, req: Request, seller: AmazonSeller) -> Response:
        q = req.query
        if bool(q.get("createdAfter")) == bool(q.get("lastUpdatedAfter")):
            return _errors(
                400,
                "InvalidInput",
                "Exactly one of createdAfter and lastUpdatedAfter must be provided.",
            )
        field_name = "created" if q.get("createdAfter") else "updated"
        after = parse_iso(q.get("createdAfter") or q.get("lastUpdatedAfter"))
        if after is None:
            return _errors(400, "InvalidInput", "Dates must be in ISO 8601 format.")
        upper = time.time() - self.search_lag_seconds
        before_key = "createdBefore" if field_name == "created" else "lastUpdatedBefore"
        if q.get(before_key):
            before = parse_iso(q[before_key])
            if before is None:
                return _errors(400, "InvalidInput", "Dates must be in ISO 8601 format.")
            upper = min(upper, before)
        included = _included(req)
        if included is None:
            return _errors(400, "InvalidInput", "Invalid includedData value.")
        try:
            page_size = int(q.get("maxResultsPerPage") or 100)
        except ValueError:
            page_size = 0
        if not 1 <= page_size <= 100:
            return _errors(400, "InvalidInput", "maxResultsPerPage must be between 1 and 100.")
        marketplaces = [m for m in (q.get("marketplaceIds") or "").split(",") if m]
        statuses = [s for s in (q.get("fulfillmentStatuses") or "").split(",") if s]
        matching = sorted(
            (
                o
                for o in self.orders.values()
                if o.seller_id == seller.seller_id
                and after <= getattr(o, field_name) <= upper
                and (not marketplaces or o.marketplace_id in marketplaces)
                and (not statuses or o.status in statuses)
            ),
            key=lambda o: (getattr(o, field_name), o.order_id),
        )
        offset = _decode_page(q.get("paginationToken"))
        if offset is None:
            return _errors(400, "InvalidInput", "Invalid paginationToken.")
        page = matching[offset : offset + page_size]
        body = {"orders": [self._order_2026(o, included) for o in page]}
        if offset + page_size < len(matching):
            body["pagination"] = {"nextToken": _encode_page(offset + page_size)}
        body[before_key] = iso(upper)
        return json_response(200, body)

    def _owned(self, seller: AmazonSeller, order_id: str):
        order = self.orders.get(order_id)
        # Another seller's order is indistinguishable from one that does not exist.
        if order is None or order.seller_id != seller.seller_id:
            return _errors(404, "NotFound", f"Order {order_id} was not found.")
        return order

    def _order_2026(self, order: AmazonOrder, included: set[str]) -> dict:
        name = MARKETPLACES[order.marketplace_id][0]
        body = {
            "orderId": order.order_id,
            "createdTime": iso(order.created),
            "lastUpdatedTime": iso(order.updated),
            "programs": [],
            "salesChannel": {
                "channelName": "AMAZON",
                "marketplaceId": order.marketplace_id,
                "marketplaceName": name,
            },
            "orderItems": [
                {
                    "orderItemId": f"{order.order_id.replace('-', '')[:10]}{n:04d}",
                    "quantityOrdered": item.quantity,
                    "product": {"asin": item.asin, "title": item.title, "sellerSku": item.sku},
                    **(
                        {
                            "proceeds": {
                                "proceedsTotal": _money(item.price * item.quantity, order.currency)
                            }
                        }
                        if "PROCEEDS" in included
                        else {}
                    ),
                }
                for n, item in enumerate(order.items, start=1)
            ],
        }
        if "BUYER" in included:
            body["buyer"] = dict(order.buyer)
        if "RECIPIENT" in included:
            body["recipient"] = {"deliveryAddress": dict(order.recipient)}
        if "PROCEEDS" in included:
            body["proceeds"] = {
                "grandTotal": _money(order.total, order.currency),
                "breakdowns": [{"type": "ITEM", "subtotal": _money(order.total, order.currency)}],
            }
        if "FULFILLMENT" in included:
            body["fulfillment"] = {
                "fulfillmentStatus": order.status,
                "fulfilledBy": order.fulfilled_by,
                "fulfillmentServiceLevel": "STANDARD",
            }
        return body


INCLUDED_DATA = {
    "BUYER",
    "RECIPIENT",
    "PROCEEDS",
    "EXPENSE",
    "PROMOTION",
    "CANCELLATION",
    "FULFILLMENT",
    "PACKAGES",
    "TAX",
    "PAYMENT",
    "FULFILLMENT_ORDERS",
}


def _included(req: Request) -> set[str] | None:
    values = {v.strip() for v in (req.query.get("includedData") or "").split(",") if v.strip()}
    return values if values <= INCLUDED_DATA else None


def _money(amount: Decimal, currency: str) -> dict:
    return {"amount": f"{amount:.2f}", "currencyCode": currency}


def _errors(status: int, code: str, message: str, details: str = "", headers=()) -> Response:
    return json_response(
        status,
        {"errors": [{"code": code, "message": message, "details": details}]},
        headers=headers,
    )


def _invalid_grant() -> Response:
    return json_response(
        400,
        {
            "error": "invalid_grant",
            "error_description": "The request has an invalid grant parameter : refresh_token",
        },
    )


def _encode_page(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode()


def _decode_page(value: str | None) -> int | None:
    if not value:
        return 0
    try:
        return int(json.loads(base64.urlsafe_b64decode(value.encode()))["o"])
    except (ValueError, KeyError, TypeError):
        return None
