"""Amazon Selling Partner API emulator: Login with Amazon, Sellers, Orders (v2026-01-01 and v0),
Finances (v0 listFinancialEvents: refunds).

Served under `<base>/amazon`; the LWA token endpoint is `<base>/amazon/auth/o2/token`. The seller
is whoever the access token was issued to: an order of another seller answers 404, exactly as an
unknown order id does.

Refunds live in the Finances API, not in Orders: each refund of an order is one event in
`payload.FinancialEvents.RefundEventList`, shaped like Amazon's ShipmentEvent (AmazonOrderId,
PostedDate, ShipmentItemAdjustmentList[] with OrderAdjustmentItemId, ItemChargeAdjustmentList
(Principal negative), ItemFeeAdjustmentList (the seller's commission, returned)). Events carry no
buyer data, as on Amazon."""

from __future__ import annotations

import base64
import hashlib
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
    "listFinancialEvents": (0.5, 30),
}
FINANCES_PAGE_MAX = 100
# NextToken lifetime (Amazon does not publish one for Finances; searchOrders' is 24 hours).
PAGE_TOKEN_TTL = 24 * 3600
COMMISSION = Decimal("0.15")  # the referral fee charged on a sale, returned on a refund
REFUND_COMMISSION = Decimal("0.20")  # of that fee, what Amazon keeps on a refund

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
    # The sum of its refunds. Orders does not serve it: refunds are served as financial events
    # (see AmazonRefund and listFinancialEvents).
    refunded: Decimal = Decimal("0")


@dataclass
class AmazonAdjustment:
    """One ShipmentItemAdjustment of a refund event: the part refunded on one order item."""

    adjustment_item_id: str  # Amazon's OrderAdjustmentItemId
    order_item_id: str
    sku: str
    quantity: int
    principal: Decimal  # positive here; served negative (money going back to the buyer)


@dataclass
class AmazonRefund:
    """A refund as the Finances API posts it: one RefundEventList entry."""

    order_id: str
    seller_id: str
    marketplace_id: str
    posted: float
    currency: str
    adjustments: list[AmazonAdjustment]

    @property
    def amount(self) -> Decimal:
        return sum((a.principal for a in self.adjustments), Decimal("0"))


class AmazonEmulator:
    def __init__(self, sandbox):
        self.sb = sandbox
        self.apps: dict[str, AmazonApp] = {}
        self.sellers: dict[str, AmazonSeller] = {}
        self.orders: dict[str, AmazonOrder] = {}
        self.refunds: list[AmazonRefund] = []  # financial events, in posting order
        self.access_tokens: dict[str, tuple[str, float]] = {}  # token → (seller id, expiry)
        self.limits = dict(DEFAULT_LIMITS)
        self.buckets: dict[tuple[str, str], TokenBucket] = {}
        # Amazon's publishing lag (about 2 minutes there). searchOrders only sees changes older
        # than this, and listFinancialEvents refuses a PostedAfter/PostedBefore later than now
        # minus this. 0 (the default) models a platform that publishes at once: windows may
        # then end in the future, and everything posted so far is served.
        self.search_lag_seconds = 0.0
        self.page_token_ttl = PAGE_TOKEN_TTL

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

    def record_refund(
        self, order_id: str, amount: Decimal, *, posted: float | None = None
    ) -> AmazonRefund:
        """Post one refund event of `amount` on an order, spread over its items by value."""
        with self.sb.lock:
            order = self.orders[order_id]
            amount = Decimal(str(amount))
            values = [i.price * i.quantity for i in order.items]
            whole = sum(values, Decimal("0")) or Decimal("1")
            adjustments, left = [], amount
            for n, (item, value) in enumerate(zip(order.items, values, strict=True), start=1):
                if n == len(order.items):
                    share = left  # the last item takes what rounding left over
                else:
                    share = min(left, (amount * value / whole).quantize(Decimal("0.01")))
                left -= share
                adjustments.append(
                    AmazonAdjustment(
                        adjustment_item_id=str(random.randint(10**13, 10**14 - 1)),
                        order_item_id=_order_item_id(order, n),
                        sku=item.sku,
                        quantity=item.quantity,
                        principal=share,
                    )
                )
            refund = AmazonRefund(
                order_id=order.order_id,
                seller_id=order.seller_id,
                marketplace_id=order.marketplace_id,
                posted=time.time() if posted is None else posted,
                currency=order.currency,
                adjustments=[a for a in adjustments if a.principal] or adjustments[:1],
            )
            self.refunds.append(refund)
            return refund

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
            ("GET", r"^/finances/v0/financialEvents$", "listFinancialEvents"),
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
            upper = min(upper, before) if self.search_lag_seconds else before
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

    def _listFinancialEvents(self, req: Request, seller: AmazonSeller) -> Response:
        """Finances v0: events posted in [PostedAfter, PostedBefore), oldest first.

        Both times must be at least `search_lag_seconds` old (Amazon: two minutes; no limit when
        it is 0); PostedBefore defaults to that limit. The NextToken carries the window it was
        issued for and expires after `page_token_ttl`; a token that is malformed, expired,
        another seller's or sent with another window is refused with 400 InvalidInput."""
        q = req.query
        now = time.time()
        limit = now - self.search_lag_seconds
        lagging = self.search_lag_seconds > 0
        try:
            page_size = int(q.get("MaxResultsPerPage") or FINANCES_PAGE_MAX)
        except ValueError:
            page_size = 0
        if not 1 <= page_size <= FINANCES_PAGE_MAX:
            return _errors(400, "InvalidInput", "MaxResultsPerPage must be between 1 and 100.")
        after = parse_iso(q["PostedAfter"]) if q.get("PostedAfter") else None
        before = parse_iso(q["PostedBefore"]) if q.get("PostedBefore") else None
        if (q.get("PostedAfter") and after is None) or (q.get("PostedBefore") and before is None):
            return _errors(400, "InvalidInput", "Dates must be in ISO 8601 format.")
        if before is not None and after is None:
            return _errors(
                400, "InvalidInput", "PostedAfter must be given when PostedBefore is given."
            )
        if lagging and ((after or 0.0) > limit or (before or 0.0) > limit):
            return _errors(
                400,
                "InvalidInput",
                "Date range is invalid: PostedAfter and PostedBefore must be no later than two "
                "minutes before the request was submitted.",
            )
        if after is not None and before is not None and before <= after:
            return _errors(400, "InvalidInput", "PostedBefore must be later than PostedAfter.")
        window = (after if after is not None else 0.0, before if before is not None else limit)
        offset = 0
        if q.get("NextToken"):
            page = _decode_finances_token(q["NextToken"])
            fresh = page is not None and now - page["t"] <= self.page_token_ttl
            same = (
                page is not None
                and page["s"] == seller.seller_id
                and (after is None or page["a"] == window[0])
                and (before is None or page["b"] == window[1])
            )
            if not (fresh and same):
                return _errors(400, "InvalidInput", "Invalid or expired NextToken.")
            offset, window = page["o"], (page["a"], page["b"])
        events = sorted(
            (
                r
                for r in self.refunds
                if r.seller_id == seller.seller_id and window[0] <= r.posted < window[1]
            ),
            key=lambda r: r.posted,
        )
        chunk = events[offset : offset + page_size]
        payload: dict = {
            "FinancialEvents": {
                "ShipmentEventList": [],
                "ShipmentSettleEventList": [],
                "RefundEventList": [_refund_event(r) for r in chunk],
                "GuaranteeClaimEventList": [],
                "ChargebackEventList": [],
                "AdjustmentEventList": [],
                "ServiceFeeEventList": [],
            }
        }
        if offset + page_size < len(events):
            payload["NextToken"] = _encode_finances_token(
                {"o": offset + page_size, "a": window[0], "b": window[1], "s": seller.seller_id}
            )
        return json_response(200, {"payload": payload})

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
                    "orderItemId": _order_item_id(order, n),
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


def _order_item_id(order: AmazonOrder, n: int) -> str:
    return f"{order.order_id.replace('-', '')[:10]}{n:04d}"


def _amount(value: Decimal, currency: str) -> dict:
    # Finances v0 money: a JSON number, not a string (the Orders API uses strings).
    return {"CurrencyCode": currency, "CurrencyAmount": float(value)}


def _refund_event(refund: AmazonRefund) -> dict:
    """One RefundEventList entry (a ShipmentEvent) as Finances v0 serves it."""
    items = []
    for adj in refund.adjustments:
        commission = (adj.principal * COMMISSION).quantize(Decimal("0.01"))
        kept = (commission * REFUND_COMMISSION).quantize(Decimal("0.01"))
        items.append(
            {
                "SellerSKU": adj.sku,
                "OrderItemId": adj.order_item_id,
                "OrderAdjustmentItemId": adj.adjustment_item_id,
                "QuantityShipped": adj.quantity,
                "ItemChargeAdjustmentList": [
                    {
                        "ChargeType": "Principal",
                        "ChargeAmount": _amount(-adj.principal, refund.currency),
                    },
                    {"ChargeType": "Tax", "ChargeAmount": _amount(Decimal("0"), refund.currency)},
                ],
                # The seller's fees, not the buyer's money: the commission comes back to the
                # seller, less the refund administration fee Amazon keeps.
                "ItemFeeAdjustmentList": [
                    {"FeeType": "Commission", "FeeAmount": _amount(commission, refund.currency)},
                    {"FeeType": "RefundCommission", "FeeAmount": _amount(-kept, refund.currency)},
                ],
                "PromotionAdjustmentList": [],
            }
        )
    return {
        "AmazonOrderId": refund.order_id,
        "SellerOrderId": refund.order_id,
        "MarketplaceName": MARKETPLACES[refund.marketplace_id][0],
        "PostedDate": iso(refund.posted),
        "ShipmentItemAdjustmentList": items,
    }


def _encode_finances_token(page: dict) -> str:
    page = dict(page, t=time.time())
    raw = json.dumps(page, sort_keys=True).encode()
    check = hashlib.sha256(raw).hexdigest()[:16]  # tells a mangled token from a real one
    return base64.urlsafe_b64encode(raw).decode() + "." + check


def _decode_finances_token(value: str) -> dict | None:
    try:
        body, check = value.rsplit(".", 1)
        raw = base64.urlsafe_b64decode(body.encode())
        if hashlib.sha256(raw).hexdigest()[:16] != check:
            return None
        page = json.loads(raw)
        return {
            "o": int(page["o"]),
            "a": float(page["a"]),
            "b": float(page["b"]),
            "s": str(page["s"]),
            "t": float(page["t"]),
        }
    except (ValueError, KeyError, TypeError):
        return None


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
