"""Shopify Admin emulator: the client-credentials token endpoint and the Admin GraphQL API
(shop, products, productsCount, orders, order, webhookSubscriptionCreate) with the
calculated-cost throttle, plus a sender of HMAC-signed webhooks.

Served under `<base>/shopify/<shop domain>`, e.g.
`<base>/shopify/demo-store.myshopify.com/admin/api/2026-10/graphql.json`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import urlsplit

from . import graphql
from .core import (
    Fault,
    LeakyBucket,
    Request,
    Response,
    html_500,
    iso,
    json_response,
    parse_iso,
    token,
)

PLATFORM = "shopify"
TOKEN_TTL = 86399
ORDERS_WINDOW = 60 * 24 * 3600  # without read_all_orders only the last 60 days are visible
MAX_SINGLE_QUERY_COST = 1000
TOPICS = {
    "ORDERS_CREATE",
    "ORDERS_UPDATED",
    "ORDERS_PAID",
    "ORDERS_FULFILLED",
    "ORDERS_CANCELLED",
    "REFUNDS_CREATE",
    "APP_UNINSTALLED",
    "PRODUCTS_UPDATE",
}
INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"


@dataclass
class ShopifyOrder:
    id: int
    name: str
    email: str  # PII
    customer: dict  # PII
    created: float
    updated: float
    total: Decimal
    currency: str
    line_items: list[dict]
    financial: str = "PAID"
    fulfillment: str = "UNFULFILLED"
    cancelled_at: float | None = None
    cancel_reason: str | None = None
    refunds: list[dict] = field(default_factory=list)  # {id, amount, at}

    @property
    def gid(self) -> str:
        return f"gid://shopify/Order/{self.id}"

    @property
    def refunded(self) -> Decimal:
        return sum((r["amount"] for r in self.refunds), Decimal("0"))

    @property
    def quantity(self) -> int:
        return sum(int(li["quantity"]) for li in self.line_items)


@dataclass
class ShopifyShop:
    domain: str
    name: str
    currency: str
    client_id: str
    client_secret: str  # also the webhook signing key
    legacy_tokens: set[str] = field(default_factory=set)
    products: list[dict] = field(default_factory=list)
    orders: dict[int, ShopifyOrder] = field(default_factory=dict)
    webhooks: list[dict] = field(default_factory=list)
    tokens: dict[str, float] = field(default_factory=dict)  # client-credentials token → expiry
    read_all_orders: bool = False
    bucket: LeakyBucket = field(default_factory=lambda: LeakyBucket(2000, 100))


class ShopifyEmulator:
    def __init__(self, sandbox):
        self.sb = sandbox
        self.shops: dict[str, ShopifyShop] = {}
        self.token_ttl = TOKEN_TTL
        self._next_id = 5_800_000_001
        self.deliveries: list[dict] = []  # webhooks sent: {url, topic, status, event_id}

    # --- state helpers ---
    def add_shop(self, **kwargs) -> ShopifyShop:
        with self.sb.lock:
            shop = ShopifyShop(**kwargs)
            self.shops[shop.domain] = shop
            return shop

    def set_bucket(self, domain: str, maximum: float, restore_rate: float) -> None:
        with self.sb.lock:
            self.shops[domain].bucket = LeakyBucket(maximum, restore_rate)

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def add_product(self, domain: str, title: str, *, status: str = "ACTIVE", **extra) -> dict:
        with self.sb.lock:
            shop = self.shops[domain]
            n = self._new_id()
            now = iso(time.time())
            product = {
                "id": f"gid://shopify/Product/{n}",
                "legacyResourceId": str(n),
                "title": title,
                "handle": re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-"),
                "status": status,
                "vendor": extra.get("vendor", shop.name),
                "productType": extra.get("product_type", ""),
                "createdAt": extra.get("created_at", now),
                "updatedAt": extra.get("updated_at", now),
                "totalInventory": extra.get("inventory", 0),
            }
            shop.products.append(product)
            return product

    def add_order(self, domain: str, **kwargs) -> ShopifyOrder:
        with self.sb.lock:
            shop = self.shops[domain]
            now = time.time()
            kwargs.setdefault("id", self._new_id())
            kwargs.setdefault("name", f"#{1001 + len(shop.orders)}")
            kwargs.setdefault("email", "")
            kwargs.setdefault("customer", {})
            kwargs.setdefault("created", now)
            kwargs.setdefault("updated", kwargs["created"])
            kwargs.setdefault("currency", shop.currency)
            lines = kwargs.setdefault(
                "line_items", [{"title": "Demo item", "quantity": 1, "price": "25.00"}]
            )
            kwargs.setdefault(
                "total",
                sum((Decimal(str(li["price"])) * int(li["quantity"]) for li in lines), Decimal(0)),
            )
            kwargs["total"] = Decimal(str(kwargs["total"]))
            order = ShopifyOrder(**kwargs)
            shop.orders[order.id] = order
            return order

    def find_order(self, order_id) -> tuple[ShopifyShop, ShopifyOrder]:
        number = int(str(order_id).rsplit("/", 1)[-1])
        for shop in self.shops.values():
            if number in shop.orders:
                return shop, shop.orders[number]
        raise KeyError(order_id)

    def touch(self, order_id, **changes) -> ShopifyOrder:
        with self.sb.lock:
            _, order = self.find_order(order_id)
            for key, value in changes.items():
                setattr(order, key, value)
            order.updated = max(time.time(), order.updated + 0.001)
            return order

    def refund(self, order_id, amount=None) -> ShopifyOrder:
        with self.sb.lock:
            _, order = self.find_order(order_id)
            left = order.total - order.refunded
            amount = left if amount is None else min(Decimal(str(amount)), left)
            order.refunds.append({"id": self._new_id(), "amount": amount, "at": time.time()})
            return self.touch(
                order_id,
                financial="REFUNDED" if order.refunded >= order.total else "PARTIALLY_REFUNDED",
            )

    def cancel(self, order_id, *, reason: str = "CUSTOMER") -> ShopifyOrder:
        with self.sb.lock:
            _, order = self.find_order(order_id)
            if order.financial in ("PAID", "PARTIALLY_REFUNDED"):
                self.refund(order_id)
            elif order.financial in ("PENDING", "AUTHORIZED"):
                order.financial = "VOIDED"
            return self.touch(order_id, cancelled_at=time.time(), cancel_reason=reason)

    def expire_access_tokens(self) -> None:
        with self.sb.lock:
            for shop in self.shops.values():
                for key in shop.tokens:
                    shop.tokens[key] = 0.0

    # --- HTTP ---
    def handle(self, req: Request) -> Response:
        domain, _, rest = req.path.lstrip("/").partition("/")
        shop = self.shops.get(domain)
        if shop is None:
            return json_response(404, {"errors": "Not Found"})
        rest = "/" + rest
        if rest == "/admin/oauth/access_token" and req.method == "POST":
            return self._access_token(req, shop)
        match = re.match(r"^/admin/api/(\d{4}-\d{2}|unstable)/graphql\.json$", rest)
        if match and req.method == "POST":
            return self._graphql(req, shop, match.group(1))
        return json_response(404, {"errors": "Not Found"})

    def _access_token(self, req: Request, shop: ShopifyShop) -> Response:
        fault = self.sb.enter(PLATFORM, "accessToken")
        if fault:
            rendered = _render_fault(fault)
            if rendered:
                return rendered
        form = req.form()
        with self.sb.lock:
            if (
                form.get("client_id") != shop.client_id
                or not hmac.compare_digest(form.get("client_secret", ""), shop.client_secret)
                or (fault and fault.mode == "revoked")
            ):
                return json_response(
                    400,
                    {
                        "error": "invalid_client",
                        "error_description": "Client authentication failed: the client id or "
                        "secret is wrong, or the app is not installed on this store.",
                    },
                )
            if form.get("grant_type") != "client_credentials":
                return json_response(400, {"error": "unsupported_grant_type"})
            access = "shpat_" + token("", 24).replace("x", "a").replace("y", "b")[:32]
            shop.tokens[access] = time.time() + self.token_ttl
        return json_response(
            200,
            {
                "access_token": access,
                "scope": "read_products,read_orders,read_customers",
                "expires_in": self.token_ttl,
            },
        )

    def _graphql(self, req: Request, shop: ShopifyShop, version: str) -> Response:
        body = req.json()
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return json_response(
                400, {"errors": {"query": "Required parameter missing or invalid"}}
            )
        try:
            op, fields = graphql.parse(body["query"], body.get("variables") or {})
        except graphql.GraphQLSyntaxError as exc:
            return _gql_errors(f"Parse error: {exc}", "PARSE_ERROR")
        if not fields:
            return _gql_errors("Empty selection", "PARSE_ERROR")
        operation = fields[0].name
        fault = self.sb.enter(PLATFORM, operation)
        if fault:
            rendered = _render_fault(fault)
            if rendered:
                return rendered
        with self.sb.lock:
            presented = req.headers.get("x-shopify-access-token", "")
            valid = presented in shop.legacy_tokens or shop.tokens.get(presented, 0) > time.time()
            if not valid or (fault and fault.mode == "revoked"):
                return json_response(401, {"errors": INVALID_TOKEN})
            requested = 10 if op == "mutation" else graphql.cost(fields)
            if requested > MAX_SINGLE_QUERY_COST:
                return _gql_errors(
                    f"Query cost is {requested}, which exceeds the single query max cost limit "
                    f"({MAX_SINGLE_QUERY_COST}).",
                    "MAX_COST_EXCEEDED",
                    extensions={"cost": self._cost(shop, requested, None)},
                )
            if not shop.bucket.try_spend(requested):
                self.sb.meter.throttle(PLATFORM, operation)
                return _gql_errors(
                    "Throttled",
                    "THROTTLED",
                    extensions={"cost": self._cost(shop, requested, None)},
                )
            data, counts, errors = {}, {}, []
            for f in fields:
                resolver = getattr(self, f"_{op}_{f.name}", None)
                if resolver is None:
                    errors.append(
                        {
                            "message": f"Field '{f.name}' doesn't exist on type "
                            f"'{'Mutation' if op == 'mutation' else 'QueryRoot'}'",
                            "extensions": {"code": "undefinedField"},
                        }
                    )
                    continue
                try:
                    value = resolver(shop, f.args, counts, f)
                    data[f.key] = graphql.project(value, f.children, f.name)
                except graphql.UndefinedField as exc:
                    errors.append({"message": str(exc), "extensions": {"code": "undefinedField"}})
                except ValueError as exc:
                    errors.append({"message": str(exc), "extensions": {"code": "argumentError"}})
            actual = 10 if op == "mutation" else graphql.cost(fields, counts=counts)
            shop.bucket.refund(max(0, requested - actual))
            out = {"extensions": {"cost": self._cost(shop, requested, actual)}}
            if errors:
                out["errors"] = errors
                if not data:
                    return json_response(200, out)
            out["data"] = data
            return json_response(200, out)

    def _cost(self, shop: ShopifyShop, requested, actual) -> dict:
        return {
            "requestedQueryCost": requested,
            "actualQueryCost": actual,
            "throttleStatus": shop.bucket.status(),
        }

    # --- resolvers: (shop, args, counts, field) → a value to project ---
    def _query_shop(self, shop: ShopifyShop, args, counts, f) -> dict:
        return {
            "id": "gid://shopify/Shop/"
            + str(int(hashlib.sha1(shop.domain.encode()).hexdigest()[:9], 16)),
            "name": shop.name,
            "myshopifyDomain": shop.domain,
            "currencyCode": shop.currency,
            "email": f"owner@{shop.domain}",
            "plan": {"displayName": "Basic", "partnerDevelopment": False, "shopifyPlus": False},
        }

    def _query_products(self, shop: ShopifyShop, args, counts, f) -> dict:
        items = sorted(shop.products, key=lambda p: int(p["legacyResourceId"]))
        return _connection(items, args, counts, f, lambda p: p)

    def _query_productsCount(self, shop: ShopifyShop, args, counts, f) -> dict:
        # Counts stop at `limit` (10,000 unless given; null for none), as Shopify's do.
        limit = args.get("limit", 10_000)
        total = len(shop.products)
        if limit is not None and total > limit:
            return {"count": limit, "precision": "AT_LEAST"}
        return {"count": total, "precision": "EXACT"}

    def _query_orders(self, shop: ShopifyShop, args, counts, f) -> dict:
        orders = list(shop.orders.values())
        if not shop.read_all_orders:
            orders = [o for o in orders if o.created >= time.time() - ORDERS_WINDOW]
        for fld, op, ts in _search_terms(args.get("query") or ""):
            attr = "updated" if fld == "updated_at" else "created"
            orders = [o for o in orders if _compare(getattr(o, attr), op, ts)]
        sort = {"UPDATED_AT": "updated", "CREATED_AT": "created", "PROCESSED_AT": "created"}.get(
            args.get("sortKey") or "ID", "id"
        )
        orders.sort(key=lambda o: (getattr(o, sort), o.id), reverse=bool(args.get("reverse")))
        return _connection(orders, args, counts, f, self._order_node)

    def _query_order(self, shop: ShopifyShop, args, counts, f) -> dict | None:
        match = re.match(r"^gid://shopify/Order/(\d+)$", str(args.get("id") or ""))
        if not match:
            raise ValueError("Invalid global id for Order")
        order = shop.orders.get(int(match.group(1)))
        return self._order_node(order) if order else None

    def _order_node(self, o: ShopifyOrder) -> dict:
        def money(amount: Decimal) -> dict:
            value = {"amount": f"{amount:.2f}", "currencyCode": o.currency}
            return {"shopMoney": value, "presentmentMoney": dict(value)}

        customer = None
        if o.customer:
            customer = {
                "id": f"gid://shopify/Customer/{o.customer.get('id', o.id + 7)}",
                "email": o.customer.get("email", o.email),
                "firstName": o.customer.get("first_name"),
                "lastName": o.customer.get("last_name"),
                "displayName": " ".join(
                    p for p in (o.customer.get("first_name"), o.customer.get("last_name")) if p
                ),
                "phone": o.customer.get("phone"),
            }
        current = o.total - o.refunded
        return {
            "__typename": "Order",
            "id": o.gid,
            "legacyResourceId": str(o.id),
            "name": o.name,
            "email": o.email,
            "createdAt": iso(o.created),
            "updatedAt": iso(o.updated),
            "processedAt": iso(o.created),
            "cancelledAt": iso(o.cancelled_at) if o.cancelled_at else None,
            "cancelReason": o.cancel_reason,
            "displayFinancialStatus": o.financial,
            "displayFulfillmentStatus": o.fulfillment,
            "currencyCode": o.currency,
            "test": False,
            "subtotalLineItemsQuantity": o.quantity,
            "currentSubtotalLineItemsQuantity": o.quantity if o.cancelled_at is None else 0,
            "totalPriceSet": money(o.total),
            "currentTotalPriceSet": money(current),
            "totalRefundedSet": money(o.refunded),
            "customer": customer,
        }

    def _mutation_webhookSubscriptionCreate(self, shop: ShopifyShop, args, counts, f) -> dict:
        topic = args.get("topic")
        sub = args.get("webhookSubscription") or {}
        uri = sub.get("uri") or sub.get("callbackUrl")
        if topic not in TOPICS:
            raise ValueError(f"Argument 'topic' has an invalid value ({topic}).")
        if not uri:
            return {
                "webhookSubscription": None,
                "userErrors": [{"field": ["webhookSubscription", "uri"], "message": "Missing"}],
            }
        if any(w["topic"] == topic and w["uri"] == uri for w in shop.webhooks):
            return {
                "webhookSubscription": None,
                "userErrors": [
                    {
                        "field": ["webhookSubscription", "callbackUrl"],
                        "message": "Address for this topic has already been taken",
                    }
                ],
            }
        record = {
            "id": f"gid://shopify/WebhookSubscription/{self._new_id()}",
            "topic": topic,
            "uri": uri,
            "format": sub.get("format") or "JSON",
            "createdAt": iso(time.time()),
        }
        shop.webhooks.append(record)
        return {"webhookSubscription": {**record, "callbackUrl": uri}, "userErrors": []}

    # --- webhooks out ---
    def webhook_payload(self, order_id, topic: str) -> dict:
        with self.sb.lock:
            _, o = self.find_order(order_id)
            refunds = [
                {
                    "id": r["id"],
                    "order_id": o.id,
                    "created_at": _rest_time(r["at"]),
                    "admin_graphql_api_id": f"gid://shopify/Refund/{r['id']}",
                    "transactions": [
                        {"kind": "refund", "status": "success", "amount": f"{r['amount']:.2f}"}
                    ],
                }
                for r in o.refunds
            ]
            if topic == "refunds/create":
                if not refunds:
                    raise ValueError("The order has no refund to announce.")
                return refunds[-1]
            fulfillment = {"FULFILLED": "fulfilled", "PARTIALLY_FULFILLED": "partial"}
            return {
                "id": o.id,
                "admin_graphql_api_id": o.gid,
                "name": o.name,
                "order_number": int(o.name.lstrip("#") or 0),
                "email": o.email,
                "created_at": _rest_time(o.created),
                "updated_at": _rest_time(o.updated),
                "processed_at": _rest_time(o.created),
                "cancelled_at": _rest_time(o.cancelled_at) if o.cancelled_at else None,
                "cancel_reason": (o.cancel_reason or "").lower() or None,
                "currency": o.currency,
                "total_price": f"{o.total:.2f}",
                "current_total_price": f"{o.total - o.refunded:.2f}",
                "subtotal_price": f"{o.total:.2f}",
                "financial_status": o.financial.lower(),
                "fulfillment_status": fulfillment.get(o.fulfillment),
                "customer": {
                    "id": o.customer.get("id", o.id + 7),
                    "email": o.customer.get("email", o.email),
                    "first_name": o.customer.get("first_name"),
                    "last_name": o.customer.get("last_name"),
                }
                if o.customer
                else None,
                "line_items": [
                    {
                        "title": li["title"],
                        "quantity": int(li["quantity"]),
                        "price": f"{Decimal(str(li['price'])):.2f}",
                    }
                    for li in o.line_items
                ],
                "refunds": refunds,
                "test": False,
            }

    def send_webhook(
        self,
        url: str,
        *,
        topic: str,
        order_id=None,
        payload: dict | None = None,
        shop: str | None = None,
        secret: str | None = None,
        event_id: str | None = None,
        webhook_id: str | None = None,
        api_version: str = "2026-10",
        timeout: float = 5.0,
    ) -> tuple[int, bytes, dict]:
        """POST a signed webhook as Shopify does; returns (status, body, headers sent).

        Pass the same `event_id` twice to play a duplicate delivery; `secret` overrides the
        store's client secret (to play a forged or old-secret signature)."""
        if payload is None:
            payload = self.webhook_payload(order_id, topic)
        if shop is None:
            shop = self.find_order(order_id)[0].domain if order_id is not None else ""
        if secret is None:
            secret = self.shops[shop].client_secret
        raw = json.dumps(payload, separators=(",", ":")).encode()
        digest = base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha256).digest())
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": digest.decode(),
            "X-Shopify-Shop-Domain": shop,
            "X-Shopify-API-Version": api_version,
            "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
            "X-Shopify-Event-Id": event_id or str(uuid.uuid4()),
            "X-Shopify-Triggered-At": datetime.now(UTC).isoformat(timespec="microseconds"),
        }
        # http.client keeps the header names' case as Shopify sends them (urllib would not).
        parts = urlsplit(url)
        connection_class = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        connection = connection_class(parts.hostname, parts.port, timeout=timeout)
        try:
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            connection.request("POST", target or "/", body=raw, headers=headers)
            response = connection.getresponse()
            status, body = response.status, response.read()
        finally:
            connection.close()
        self.deliveries.append(
            {
                "url": url,
                "topic": topic,
                "status": status,
                "event_id": headers["X-Shopify-Event-Id"],
            }
        )
        return status, body, headers

    def deliver(self, domain: str, topic: str, order_id, **kwargs) -> list[int]:
        """Send `topic` for an order to every subscription the app registered for it."""
        enum = topic.upper().replace("/", "_")
        targets = [w["uri"] for w in self.shops[domain].webhooks if w["topic"] == enum]
        return [
            self.send_webhook(uri, topic=topic, order_id=order_id, shop=domain, **kwargs)[0]
            for uri in targets
        ]


def _connection(items: list, args: dict, counts: dict, f, to_node) -> dict:
    first = args.get("first")
    if not isinstance(first, int) or not 1 <= first <= 250:
        raise ValueError("'first' is required and must be between 1 and 250.")
    offset = 0
    if args.get("after"):
        try:
            offset = int(json.loads(base64.b64decode(args["after"]))["last"]) + 1
        except (ValueError, KeyError, TypeError):
            raise ValueError("Invalid cursor for 'after'.") from None
    page = items[offset : offset + first]
    counts[id(f)] = len(page)

    def cursor(n: int) -> str:
        return base64.b64encode(json.dumps({"last": n}).encode()).decode()

    nodes = [to_node(item) for item in page]
    return {
        "pageInfo": {
            "hasNextPage": offset + first < len(items),
            "hasPreviousPage": offset > 0,
            "startCursor": cursor(offset) if page else None,
            "endCursor": cursor(offset + len(page) - 1) if page else None,
        },
        "nodes": nodes,
        "edges": [{"cursor": cursor(offset + n), "node": node} for n, node in enumerate(nodes)],
    }


_TERM = re.compile(r"(updated_at|created_at):(>=|<=|>|<)?'?\"?([0-9T:.\-+Z]+)'?\"?")


def _search_terms(query: str) -> list[tuple[str, str, float]]:
    terms = []
    for fld, op, value in _TERM.findall(query):
        ts = parse_iso(value)
        if ts is None:
            raise ValueError(f"Invalid date in search query: {value}")
        terms.append((fld, op or "=", ts))
    return terms


def _compare(value: float, op: str, ts: float) -> bool:
    # Shopify stores whole seconds; compare on that grain.
    value = int(value)
    return {
        ">": value > ts,
        ">=": value >= ts,
        "<": value < ts,
        "<=": value <= ts,
        "=": value == int(ts),
    }[op]


def _rest_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def _gql_errors(message: str, code: str, *, extensions: dict | None = None) -> Response:
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    if code == "THROTTLED":
        body["errors"][0]["extensions"]["documentation"] = (
            "https://shopify.dev/api/usage/rate-limits"
        )
    if extensions:
        body["extensions"] = extensions
    return json_response(200, body)


def _render_fault(fault: Fault) -> Response | None:
    if fault.mode == "429":
        return json_response(
            429,
            {"errors": "Exceeded 2 calls per second for api client. Reduce request rates."},
            headers=[("Retry-After", f"{fault.retry_after:g}")],
        )
    if fault.mode == "500":
        return json_response(
            500,
            {
                "errors": [
                    {
                        "message": "Internal error. Looks like something went wrong on our end.",
                        "extensions": {"code": "INTERNAL_SERVER_ERROR"},
                    }
                ]
            },
        )
    if fault.mode == "non_json_500":
        return html_500()
    return None
