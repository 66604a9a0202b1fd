"""TikTok Shop Partner API (202309) emulator.

API under `<base>/tiktok`, auth under `<base>/tiktok-auth`. Every API request's `sign` is checked
with the published algorithm; the token refresh really rotates: each refresh returns a new refresh
token and the one just used stops working.

After-sale refunds live in the Return & Refund API, not on the order: each refund of an order is
a return record (`POST /return_refund/202309/returns/search` → data.return_orders[] with
return_id, order_id, return_type, return_status, refund_amount{currency, refund_total, …},
create_time, update_time)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import re
import time
from dataclasses import dataclass, field
from decimal import Decimal

from .core import Fault, Request, Response, html_500, json_response, token

PLATFORM = "tiktok"

ACCESS_TOKEN_TTL = 7 * 24 * 3600
REFRESH_TOKEN_TTL = 365 * 24 * 3600

# Envelope codes (0 is success). 105xxx / 360xxx are token problems, 106001 a bad signature.
INVALID_ACCESS_TOKEN = 105001
EXPIRED_ACCESS_TOKEN = 105002
INVALID_SIGN = 106001
INVALID_SHOP_CIPHER = 106011
INVALID_APP = 36004002
INVALID_REFRESH_TOKEN = 36004004
RATE_LIMITED = 12004001
INTERNAL_ERROR = 36009999
INVALID_PARAMETER = 36009003
RETURNS_PAGE_MAX = 50
PAGE_TOKEN_TTL = 24 * 3600  # page_token lifetime (TikTok does not publish one)

RETURN_TYPES = ("REFUND", "RETURN_AND_REFUND", "REPLACEMENT")
RETURN_STATUSES = (
    "RETURN_OR_REFUND_REQUEST_PENDING",
    "REFUND_OR_RETURN_REQUEST_REJECT",
    "AWAITING_BUYER_SHIP",
    "BUYER_SHIPPED_ITEM",
    "REJECT_RECEIVE_PACKAGE",
    "RETURN_OR_REFUND_REQUEST_SUCCESS",
    "RETURN_OR_REFUND_REQUEST_CANCEL",
    "RETURN_OR_REFUND_REQUEST_COMPLETE",
    "AWAITING_BUYER_RESPONSE",
)
REFUND_COMPLETE = "RETURN_OR_REFUND_REQUEST_COMPLETE"

STATUSES = (
    "UNPAID",
    "ON_HOLD",
    "AWAITING_SHIPMENT",
    "PARTIALLY_SHIPPING",
    "AWAITING_COLLECTION",
    "IN_TRANSIT",
    "DELIVERED",
    "COMPLETED",
    "CANCELLED",
)


def sign(app_secret: str, path: str, params: dict[str, str], body: bytes = b"") -> str:
    """The emulator's own copy of the published algorithm (kept apart from the adapter's so a
    mistake in one shows up as a 106001 rather than being shared by both)."""
    joined = "".join(
        f"{key}{params[key]}" for key in sorted(params) if key not in ("sign", "access_token")
    )
    wrapped = app_secret.encode() + path.encode() + joined.encode() + body + app_secret.encode()
    return hmac.new(app_secret.encode(), wrapped, hashlib.sha256).hexdigest()


@dataclass
class TikTokApp:
    app_key: str
    app_secret: str


@dataclass
class TikTokShop:
    id: str
    name: str
    region: str
    code: str
    cipher: str
    seller_type: str = "LOCAL"


@dataclass
class TikTokSeller:
    open_id: str
    seller_name: str
    region: str
    app_key: str
    refresh_token: str
    shops: list[TikTokShop]
    refresh_token_expires: float = 0.0


@dataclass
class TikTokOrder:
    id: str
    shop_id: str
    status: str
    create_time: int
    update_time: int
    currency: str
    sub_total: Decimal
    shipping_fee: Decimal
    tax: Decimal
    line_items: list[dict]
    user_id: str = ""
    buyer_email: str = ""  # PII
    recipient: dict = field(default_factory=dict)  # PII
    paid_time: int | None = None
    cancel_reason: str = ""
    # The sum of its completed refunds. The order does not serve it: refunds are served as
    # return records (see TikTokReturn and searchReturns).
    refunded: Decimal = Decimal("0")

    @property
    def total(self) -> Decimal:
        return self.sub_total + self.shipping_fee + self.tax


@dataclass
class TikTokReturn:
    """A return/refund request as the Return & Refund API serves it."""

    return_id: str
    order_id: str
    shop_id: str
    return_type: str
    return_status: str
    currency: str
    refund_subtotal: Decimal
    create_time: int
    update_time: int
    line_item_ids: list[str] = field(default_factory=list)
    return_reason_text: str = "Changed my mind"

    @property
    def refund_total(self) -> Decimal:
        return self.refund_subtotal


class TikTokEmulator:
    def __init__(self, sandbox):
        self.sb = sandbox
        self.apps: dict[str, TikTokApp] = {}
        self.sellers: dict[str, TikTokSeller] = {}
        self.orders: dict[str, TikTokOrder] = {}
        self.returns: dict[str, TikTokReturn] = {}
        self.page_token_ttl = PAGE_TOKEN_TTL
        # access token → (open id, app key, expiry)
        self.access_tokens: dict[str, tuple[str, str, float]] = {}
        self.retired_refresh_tokens: set[str] = set()
        self.access_token_ttl = ACCESS_TOKEN_TTL

    # --- state helpers ---
    def add_app(self, app_key: str, app_secret: str) -> TikTokApp:
        with self.sb.lock:
            app = self.apps[app_key] = TikTokApp(app_key, app_secret)
            return app

    def add_seller(self, **kwargs) -> TikTokSeller:
        with self.sb.lock:
            kwargs.setdefault("refresh_token_expires", time.time() + REFRESH_TOKEN_TTL)
            seller = TikTokSeller(**kwargs)
            self.sellers[seller.open_id] = seller
            return seller

    def shop(self, shop_id: str) -> TikTokShop:
        return next(s for seller in self.sellers.values() for s in seller.shops if s.id == shop_id)

    def add_order(self, *, shop_id: str, **kwargs) -> TikTokOrder:
        with self.sb.lock:
            now = int(time.time())
            kwargs.setdefault("id", self._new_order_id())
            kwargs.setdefault("status", "AWAITING_SHIPMENT")
            kwargs.setdefault("create_time", now)
            kwargs.setdefault("update_time", kwargs["create_time"])
            kwargs.setdefault("currency", "USD")
            kwargs.setdefault("shipping_fee", Decimal("0"))
            kwargs.setdefault("tax", Decimal("0"))
            if kwargs["status"] != "UNPAID":
                kwargs.setdefault("paid_time", kwargs["create_time"] + 42)
            lines = kwargs.setdefault(
                "line_items",
                [_line("1729587301234567890", "Demo item", "Default", Decimal("19.99"))],
            )
            kwargs.setdefault("sub_total", sum(Decimal(i["sale_price"]) for i in lines))
            for key in ("sub_total", "shipping_fee", "tax"):
                kwargs[key] = Decimal(str(kwargs[key]))
            order = TikTokOrder(shop_id=shop_id, **kwargs)
            self.orders[order.id] = order
            return order

    def _new_order_id(self) -> str:
        while True:
            candidate = str(random.randint(576_000_000_000_000_000, 579_999_999_999_999_999))
            if candidate not in self.orders:
                return candidate

    def touch(self, order_id: str, **changes) -> TikTokOrder:
        with self.sb.lock:
            order = self.orders[order_id]
            for key, value in changes.items():
                setattr(order, key, value)
            order.update_time = max(int(time.time()), order.update_time + 1)
            return order

    def add_return(
        self,
        order_id: str,
        amount,
        *,
        status: str = REFUND_COMPLETE,
        return_type: str = "REFUND",
        when: int | None = None,
    ) -> TikTokReturn:
        """A return/refund record on an order (Sandbox.refund_order adds completed ones)."""
        if status not in RETURN_STATUSES or return_type not in RETURN_TYPES:
            raise ValueError(f"Unknown return status or type: {status}, {return_type}")
        with self.sb.lock:
            order = self.orders[order_id]
            now = int(time.time()) if when is None else int(when)
            while True:
                return_id = str(random.randint(4_035 * 10**15, 4_040 * 10**15 - 1))
                if return_id not in self.returns:
                    break
            record = self.returns[return_id] = TikTokReturn(
                return_id=return_id,
                order_id=order.id,
                shop_id=order.shop_id,
                return_type=return_type,
                return_status=status,
                currency=order.currency,
                refund_subtotal=Decimal(str(amount)),
                create_time=now,
                update_time=now,
                line_item_ids=[line["id"] for line in order.line_items[:1]],
            )
            return record

    def update_return(self, return_id: str, **changes) -> TikTokReturn:
        """Change a return (its status, …) and move its update time."""
        with self.sb.lock:
            record = self.returns[return_id]
            for key, value in changes.items():
                setattr(record, key, value)
            record.update_time = max(int(time.time()), record.update_time + 1)
            return record

    def expire_access_tokens(self) -> None:
        with self.sb.lock:
            for key, (open_id, app_key, _) in list(self.access_tokens.items()):
                self.access_tokens[key] = (open_id, app_key, 0.0)

    def issue_access_token(self, open_id: str, *, ttl: float | None = None) -> tuple[str, int]:
        """An access token as if the seller had just authorized (for tests and the demo)."""
        with self.sb.lock:
            seller = self.sellers[open_id]
            access = token("ROW_", 40)
            expires = int(time.time() + (self.access_token_ttl if ttl is None else ttl))
            self.access_tokens[access] = (open_id, seller.app_key, expires)
            return access, expires

    # --- HTTP: auth ---
    def handle_auth(self, req: Request) -> Response:
        if req.path != "/api/v2/token/refresh" or req.method != "GET":
            return _envelope(404, 36009404, "Not found")
        fault = self.sb.enter(PLATFORM, "refreshToken")
        if fault:
            rendered = _render_fault(fault)
            if rendered:
                return rendered
        q = req.query
        with self.sb.lock:
            app = self.apps.get(q.get("app_key", ""))
            if app is None or not hmac.compare_digest(app.app_secret, q.get("app_secret", "")):
                return _envelope(200, INVALID_APP, "Invalid app_key or app_secret.")
            if q.get("grant_type") != "refresh_token":
                return _envelope(200, INVALID_PARAMETER, "grant_type must be refresh_token.")
            presented = q.get("refresh_token", "")
            seller = next(
                (
                    s
                    for s in self.sellers.values()
                    if s.app_key == app.app_key and s.refresh_token == presented
                ),
                None,
            )
            if (
                seller is None
                or seller.refresh_token_expires < time.time()
                or (fault and fault.mode == "revoked")
            ):
                reused = presented in self.retired_refresh_tokens
                return _envelope(
                    200,
                    INVALID_REFRESH_TOKEN,
                    "The refresh_token has already been used."
                    if reused
                    else "Invalid refresh_token: it is expired, revoked or unknown.",
                )
            self.retired_refresh_tokens.add(seller.refresh_token)
            seller.refresh_token = token("ROW_", 40)
            seller.refresh_token_expires = time.time() + REFRESH_TOKEN_TTL
            access, expires = self.issue_access_token(seller.open_id)
            data = {
                "access_token": access,
                "access_token_expire_in": expires,
                "refresh_token": seller.refresh_token,
                "refresh_token_expire_in": int(seller.refresh_token_expires),
                "open_id": seller.open_id,
                "seller_name": seller.seller_name,
                "seller_base_region": seller.region,
                "user_type": 0,
                "granted_scopes": ["seller.authorization.info", "seller.order.info"],
            }
        return _envelope(200, 0, "success", data)

    # --- HTTP: API ---
    def handle_api(self, req: Request) -> Response:
        routes = {
            ("GET", "/authorization/202309/shops"): ("getAuthorizedShops", False),
            ("GET", "/order/202309/orders"): ("getOrderDetail", True),
            ("POST", "/order/202309/orders/search"): ("searchOrders", True),
            ("POST", "/return_refund/202309/returns/search"): ("searchReturns", True),
        }
        route = routes.get((req.method, req.path))
        if route is None:
            return _envelope(404, 36009404, "Not found: check the path and version.")
        operation, shop_scoped = route
        fault = self.sb.enter(PLATFORM, operation)
        if fault:
            rendered = _render_fault(fault)
            if rendered:
                return rendered
        q = req.query
        with self.sb.lock:
            app = self.apps.get(q.get("app_key", ""))
            if app is None:
                return _envelope(401, INVALID_SIGN, "Invalid credentials: unknown app_key.")
            if not q.get("timestamp", "").isdigit():
                return _envelope(400, INVALID_PARAMETER, "timestamp is required.")
            expected = sign(app.app_secret, req.path, q, req.body)
            if not hmac.compare_digest(expected, q.get("sign", "")):
                return _envelope(
                    401, INVALID_SIGN, "Invalid credentials. The 'sign' query parameter is invalid."
                )
            open_id, app_key, expires = self.access_tokens.get(
                req.headers.get("x-tts-access-token", ""), ("", "", 0.0)
            )
            seller = self.sellers.get(open_id)
            if seller is None or app_key != app.app_key or (fault and fault.mode == "revoked"):
                return _envelope(
                    401,
                    INVALID_ACCESS_TOKEN,
                    "Invalid credentials. The 'x-tts-access-token' header is invalid.",
                )
            if expires < time.time():
                return _envelope(
                    401,
                    EXPIRED_ACCESS_TOKEN,
                    "Expired credentials. The 'x-tts-access-token' header is expired.",
                )
            shop = None
            if shop_scoped:
                shop = next((s for s in seller.shops if s.cipher == q.get("shop_cipher")), None)
                if shop is None:
                    return _envelope(
                        400,
                        INVALID_SHOP_CIPHER,
                        "shop_cipher is missing or does not belong to this seller.",
                    )
            return getattr(self, "_" + operation)(req, seller, shop)

    def _getAuthorizedShops(self, req, seller: TikTokSeller, shop) -> Response:
        shops = [
            {
                "id": s.id,
                "name": s.name,
                "region": s.region,
                "code": s.code,
                "cipher": s.cipher,
                "seller_type": s.seller_type,
            }
            for s in seller.shops
        ]
        return _envelope(200, 0, "Success", {"shops": shops})

    def _getOrderDetail(self, req: Request, seller, shop: TikTokShop) -> Response:
        ids = [i for i in (req.query.get("ids") or "").split(",") if i]
        if not 1 <= len(ids) <= 50:
            return _envelope(400, INVALID_PARAMETER, "ids: give between 1 and 50 order ids.")
        # Orders of other shops are simply absent, exactly like unknown ids.
        orders = [
            self._order_json(self.orders[i])
            for i in ids
            if i in self.orders and self.orders[i].shop_id == shop.id
        ]
        return _envelope(200, 0, "Success", {"orders": orders})

    def _searchOrders(self, req: Request, seller, shop: TikTokShop) -> Response:
        q = req.query
        try:
            page_size = int(q.get("page_size") or 0)
        except ValueError:
            page_size = 0
        if not 1 <= page_size <= 100:
            return _envelope(400, INVALID_PARAMETER, "page_size must be between 1 and 100.")
        body = req.json()
        if not isinstance(body, dict):
            return _envelope(400, INVALID_PARAMETER, "The body must be a JSON object.")
        sort_field = q.get("sort_field") or "create_time"
        if sort_field not in ("create_time", "update_time"):
            return _envelope(400, INVALID_PARAMETER, "sort_field is create_time or update_time.")
        bounds = {}
        for key in ("create_time_ge", "create_time_lt", "update_time_ge", "update_time_lt"):
            if key in body:
                if not isinstance(body[key], int):
                    return _envelope(400, INVALID_PARAMETER, f"{key} must be a Unix timestamp.")
                bounds[key] = body[key]
        status = body.get("order_status")

        def wanted(o: TikTokOrder) -> bool:
            return (
                o.shop_id == shop.id
                and o.create_time >= bounds.get("create_time_ge", 0)
                and o.create_time < bounds.get("create_time_lt", 1 << 62)
                and o.update_time >= bounds.get("update_time_ge", 0)
                and o.update_time < bounds.get("update_time_lt", 1 << 62)
                and (not status or o.status == status)
            )

        matching = sorted(
            (o for o in self.orders.values() if wanted(o)),
            key=lambda o: (getattr(o, sort_field), o.id),
            reverse=(q.get("sort_order") or "DESC").upper() == "DESC",
        )
        offset = _decode_page(q.get("page_token"))
        if offset is None:
            return _envelope(400, INVALID_PARAMETER, "Invalid page_token.")
        page = matching[offset : offset + page_size]
        more = offset + page_size < len(matching)
        data = {
            "orders": [self._order_json(o) for o in page],
            "next_page_token": _encode_page(offset + page_size) if more else "",
            "total_count": len(matching),
        }
        return _envelope(200, 0, "Success", data)

    def _searchReturns(self, req: Request, seller, shop: TikTokShop) -> Response:
        """Return & Refund API 202309: the shop's returns matching the body's filters.

        The page_token remembers the search it came from and expires after `page_token_ttl`;
        a malformed, expired or foreign token is refused with 36009003, like a bad parameter."""
        q = req.query
        try:
            page_size = int(q.get("page_size") or 0)
        except ValueError:
            page_size = 0
        if not 1 <= page_size <= RETURNS_PAGE_MAX:
            return _envelope(
                400, INVALID_PARAMETER, f"page_size must be between 1 and {RETURNS_PAGE_MAX}."
            )
        body = req.json()
        if not isinstance(body, dict):
            return _envelope(400, INVALID_PARAMETER, "The body must be a JSON object.")
        sort_field = q.get("sort_field") or "create_time"
        if sort_field not in ("create_time", "update_time"):
            return _envelope(400, INVALID_PARAMETER, "sort_field is create_time or update_time.")
        sort_order = (q.get("sort_order") or "DESC").upper()
        bounds = {}
        for key in ("create_time_ge", "create_time_lt", "update_time_ge", "update_time_lt"):
            if key in body:
                if not isinstance(body[key], int) or isinstance(body[key], bool):
                    return _envelope(400, INVALID_PARAMETER, f"{key} must be a Unix timestamp.")
                bounds[key] = body[key]
        lists = {}
        for key in ("return_ids", "order_ids", "return_types", "return_status"):
            if key in body:
                if not isinstance(body[key], list):
                    return _envelope(400, INVALID_PARAMETER, f"{key} must be a list.")
                lists[key] = {str(v) for v in body[key]}

        def wanted(r: TikTokReturn) -> bool:
            return (
                r.shop_id == shop.id
                and r.create_time >= bounds.get("create_time_ge", 0)
                and r.create_time < bounds.get("create_time_lt", 1 << 62)
                and r.update_time >= bounds.get("update_time_ge", 0)
                and r.update_time < bounds.get("update_time_lt", 1 << 62)
                and ("return_ids" not in lists or r.return_id in lists["return_ids"])
                and ("order_ids" not in lists or r.order_id in lists["order_ids"])
                and ("return_types" not in lists or r.return_type in lists["return_types"])
                and ("return_status" not in lists or r.return_status in lists["return_status"])
            )

        matching = sorted(
            (r for r in self.returns.values() if wanted(r)),
            key=lambda r: (getattr(r, sort_field), r.return_id),
            reverse=sort_order == "DESC",
        )
        search = hashlib.sha256(
            json.dumps([shop.id, sort_field, sort_order, body], sort_keys=True).encode()
        ).hexdigest()[:16]
        offset = 0
        if q.get("page_token"):
            page = _decode_search_token(q["page_token"])
            if page is None or page["w"] != search or time.time() - page["t"] > self.page_token_ttl:
                return _envelope(400, INVALID_PARAMETER, "Invalid or expired page_token.")
            offset = page["o"]
        chunk = matching[offset : offset + page_size]
        more = offset + page_size < len(matching)
        data = {
            "return_orders": [self._return_json(r) for r in chunk],
            "next_page_token": _encode_search_token(offset + page_size, search) if more else "",
            "total_count": len(matching),
        }
        return _envelope(200, 0, "Success", data)

    def _return_json(self, r: TikTokReturn) -> dict:
        order = self.orders.get(r.order_id)
        lines = {line["id"]: line for line in (order.line_items if order else [])}
        money = {
            "currency": r.currency,
            "refund_total": f"{r.refund_total:.2f}",
            "refund_subtotal": f"{r.refund_subtotal:.2f}",
            "refund_shipping_fee": "0.00",
            "refund_tax": "0.00",
            "retail_delivery_fee": "0.00",
            "buyer_service_fee": "0.00",
        }
        return {
            "return_id": r.return_id,
            "order_id": r.order_id,
            "return_type": r.return_type,
            "return_status": r.return_status,
            "arbitration_status": "",
            "role": "BUYER",
            "return_reason": "ecom_order_refund_reason_no_longer_needed",
            "return_reason_text": r.return_reason_text,
            "create_time": r.create_time,
            "update_time": r.update_time,
            "refund_amount": money,
            "return_line_items": [
                {
                    "return_line_item_id": f"{r.return_id[:12]}{n:04d}",
                    "order_line_item_id": line_id,
                    "sku_id": lines.get(line_id, {}).get("sku_id", ""),
                    "sku_name": lines.get(line_id, {}).get("sku_name", ""),
                    "product_name": lines.get(line_id, {}).get("product_name", ""),
                    "seller_sku": lines.get(line_id, {}).get("seller_sku", ""),
                    "refund_amount": money,
                }
                for n, line_id in enumerate(r.line_item_ids, start=1)
            ],
            "return_tracking_number": "",
            "return_method": "",
            "can_buyer_keep_item": r.return_type == "REFUND",
        }

    def _order_json(self, o: TikTokOrder) -> dict:
        return {
            "id": o.id,
            "status": o.status,
            "create_time": o.create_time,
            "update_time": o.update_time,
            "paid_time": o.paid_time,
            "user_id": o.user_id,
            "buyer_email": o.buyer_email,
            "buyer_message": "",
            "recipient_address": dict(o.recipient),
            "payment": {
                "currency": o.currency,
                "sub_total": f"{o.sub_total:.2f}",
                "shipping_fee": f"{o.shipping_fee:.2f}",
                "seller_discount": "0",
                "platform_discount": "0",
                "total_amount": f"{o.total:.2f}",
                "original_total_product_price": f"{o.sub_total:.2f}",
                "original_shipping_fee": f"{o.shipping_fee:.2f}",
                "tax": f"{o.tax:.2f}",
            },
            "line_items": [
                {**line, "display_status": o.status, "currency": o.currency}
                for line in o.line_items
            ],
            "fulfillment_type": "FULFILLMENT_BY_SELLER",
            "delivery_type": "HOME_DELIVERY",
            "payment_method_name": "Credit card",
            "cancel_reason": o.cancel_reason,
            "cancellation_initiator": "SELLER" if o.cancel_reason else "",
            "is_on_hold_order": o.status == "ON_HOLD",
            "is_sample_order": False,
        }


def _line(product_id: str, name: str, sku_name: str, price: Decimal) -> dict:
    """One unit: TikTok lists one line item per unit bought."""
    return {
        "id": str(random.randint(577_000_000_000_000_000, 577_999_999_999_999_999)),
        "product_id": product_id,
        "product_name": name,
        "sku_id": str(int(product_id) + 1),
        "sku_name": sku_name,
        "seller_sku": re.sub(r"[^A-Z0-9]+", "-", name.upper()).strip("-")[:20],
        "sale_price": f"{price:.2f}",
        "original_price": f"{price:.2f}",
        "is_gift": False,
    }


def line_items(product_id: str, name: str, sku_name: str, price, quantity: int = 1) -> list[dict]:
    return [_line(product_id, name, sku_name, Decimal(str(price))) for _ in range(quantity)]


def _envelope(status: int, code: int, message: str, data=None) -> Response:
    request_id = time.strftime("%Y%m%d%H%M%S") + f"{random.getrandbits(64):016X}"
    return json_response(
        status, {"code": code, "message": message, "request_id": request_id, "data": data}
    )


def _render_fault(fault: Fault) -> Response | None:
    if fault.mode == "429":
        response = _envelope(429, RATE_LIMITED, "Too many requests. Please retry later.")
        response.headers.append(("Retry-After", f"{fault.retry_after:g}"))
        return response
    if fault.mode == "500":
        return _envelope(500, INTERNAL_ERROR, "Internal error. Please retry later.")
    if fault.mode == "non_json_500":
        return html_500()
    return None


def _encode_search_token(offset: int, search: str) -> str:
    raw = json.dumps({"o": offset, "w": search, "t": time.time()}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_search_token(value: str) -> dict | None:
    try:
        padded = value + "=" * (-len(value) % 4)
        page = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return {"o": int(page["o"]), "w": str(page["w"]), "t": float(page["t"])}
    except (ValueError, KeyError, TypeError):
        return None


def _encode_page(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def _decode_page(value: str | None) -> int | None:
    if not value:
        return 0
    try:
        padded = value + "=" * (-len(value) % 4)
        return int(json.loads(base64.urlsafe_b64decode(padded.encode()))["o"])
    except (ValueError, KeyError, TypeError):
        return None
