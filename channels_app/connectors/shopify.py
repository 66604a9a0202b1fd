"""Shopify adapter: a thin Admin GraphQL client on `requests`.

Two ways to connect: a legacy custom app's non-expiring `shpat_` token, or a Dev Dashboard app's
client id + client secret, exchanged for a 24-hour token (client-credentials grant) that is kept
sealed as `runtime_access_token` and renewed by `refresh_token()` from a periodic task. The
client secret is also the key that signs the store's webhooks.

Rate limit: the calculated query cost (a leaky bucket). Each answer's
`extensions.cost.throttleStatus` paces the next call, and a THROTTLED error waits for the
bucket to refill — up to `max_throttle_wait` seconds, beyond which it raises RateLimited.

Projection: `status` is the order's displayFinancialStatus; `delivered` means
displayFulfillmentStatus FULFILLED (the Order has no delivery state)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

import requests
from django.conf import settings

from channels_app.models import Channel

from .base import (
    BuyerHint,
    ConfigField,
    ConnectionCheck,
    ConnectorError,
    OrderNotFound,
    OrderProjection,
    PermanentError,
    RateLimited,
    TemporaryError,
    compare_buyer,
)
from .tokens import ACCESS, TokenGrant, ensure_token, usable_token

log = logging.getLogger(__name__)

DEFAULT_API_VERSION = "2026-10"
PRODUCTS_PAGE = 100
ORDERS_PAGE = 50
ORDER_FIELDS = """id name createdAt updatedAt processedAt cancelledAt
  displayFinancialStatus displayFulfillmentStatus subtotalLineItemsQuantity
  totalPriceSet { shopMoney { amount currencyCode } }
  currentTotalPriceSet { shopMoney { amount currencyCode } }
  totalRefundedSet { shopMoney { amount currencyCode } }"""
BUYER_FIELDS = "email customer { email }"  # PII: asked for only when something compares it

Resolver = Callable[[str], str | None]


class ShopifyConnector:
    kind = "shopify"
    order_number_pattern = r"^(gid://shopify/Order/)?\d+$"
    config_fields = (
        ConfigField("shop_domain", "Store domain", help="Such as my-store.myshopify.com."),
        ConfigField(
            "api_base",
            "API base URL",
            required=False,
            help="Default https://(store domain); change only for the local emulator.",
        ),
        ConfigField(
            "api_version",
            "API version",
            required=False,
            default=DEFAULT_API_VERSION,
            help="Shopify's quarterly Admin API version.",
        ),
    )
    secret_fields = (
        ConfigField(
            "access_token",
            "Admin API access token",
            required=False,
            help="A legacy custom app's token (shpat_…). Or give the client id and secret.",
        ),
        ConfigField(
            "client_id", "Client id", required=False, help="Dev Dashboard → your app → Settings."
        ),
        ConfigField(
            "client_secret",
            "Client secret",
            required=False,
            help="Dev Dashboard → your app → Settings. Also verifies the store's webhooks.",
        ),
    )

    def __init__(
        self,
        channel: Channel,
        *,
        timeout: float | None = None,
        max_throttle_wait: float = 20.0,
        refresh_margin: timedelta = timedelta(minutes=30),
    ):
        self.channel = channel
        self.timeout = timeout or getattr(settings, "CHANNEL_HTTP_TIMEOUT", 10.0)
        self.max_throttle_wait = max_throttle_wait
        self.refresh_margin = refresh_margin
        self.throttle_status: dict | None = None  # the last throttleStatus Shopify reported
        self._status_at = 0.0
        self._prefer_memory = False
        self._session = requests.Session()
        self._sleep = time.sleep

    # --- configuration ---
    @property
    def shop_domain(self) -> str:
        domain = (self.channel.config.get("shop_domain") or "").strip().lower()
        if not domain:
            raise PermanentError("The Shopify store domain is missing — enter it in Online Shop.")
        return domain

    @property
    def api_base(self) -> str:
        return (self.channel.config.get("api_base") or f"https://{self.shop_domain}").rstrip("/")

    @property
    def graphql_url(self) -> str:
        version = self.channel.config.get("api_version") or DEFAULT_API_VERSION
        return f"{self.api_base}/admin/api/{version}/graphql.json"

    def _secret(self, source: Channel, name: str) -> str | None:
        return source.secret(name) if name in source.sealed_secrets else None

    @property
    def uses_client_credentials(self) -> bool:
        return not self._secret(self.channel, "access_token")

    # --- the contract ---
    def check(self) -> ConnectionCheck:
        """Save & Verify: the store's name and domain, with the token in hand."""
        self._prefer_memory = True
        try:
            data = self._graphql("{ shop { name myshopifyDomain } }")
        finally:
            self._prefer_memory = False
        shop = data.get("shop") or {}
        return ConnectionCheck(
            summary=f"Connected to {shop.get('name')} ({shop.get('myshopifyDomain')}).",
            details={
                "shop_name": shop.get("name"),
                "shop_domain": shop.get("myshopifyDomain"),
                "auth": "client credentials" if self.uses_client_credentials else "access token",
            },
        )

    def fetch_order(
        self,
        order_number: str,
        *,
        match: BuyerHint | None = None,
        resolve_buyer: Resolver | None = None,
    ) -> OrderProjection:
        """One order by GID (or its numeric id), as the webhook task needs it."""
        number = (order_number or "").strip()
        if not re.match(self.order_number_pattern, number):
            raise OrderNotFound(f"'{number}' is not a Shopify order id.")
        gid = number if number.startswith("gid://") else f"gid://shopify/Order/{number}"
        buyer = BUYER_FIELDS if (match or resolve_buyer) else ""
        data = self._graphql(
            f"query($id: ID!) {{ order(id: $id) {{ {ORDER_FIELDS} {buyer} }} }}", {"id": gid}
        )
        order = data.get("order")
        if not order:
            raise OrderNotFound(f"The store has no order {gid}.")
        return self._project(order, match, resolve_buyer)

    def changed_orders(
        self, since: datetime, *, resolve_buyer: Resolver | None = None
    ) -> Iterator[OrderProjection]:
        """Orders updated at or after `since`, oldest change first (the order bridge).

        `resolve_buyer(email)` may map the buyer's e-mail to a reference (a member id); the
        e-mail itself never leaves this function. Without `read_all_orders` Shopify shows only
        the last 60 days."""
        stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        buyer = BUYER_FIELDS if resolve_buyer else ""
        query = (
            "query($first: Int!, $after: String, $query: String) {"
            " orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {"
            f" pageInfo {{ hasNextPage endCursor }} nodes {{ {ORDER_FIELDS} {buyer} }} }} }}"
        )
        after = None
        while True:
            variables = {"first": ORDERS_PAGE, "after": after, "query": f"updated_at:>='{stamp}'"}
            data = self._graphql(query, variables, expected_cost=2 + ORDERS_PAGE * 8)
            connection = data.get("orders") or {}
            projections = [
                self._project(o, None, resolve_buyer) for o in connection.get("nodes") or []
            ]
            page = connection.get("pageInfo") or {}
            after = page.get("endCursor") if page.get("hasNextPage") else None
            del data, connection
            yield from projections
            if not after:
                return

    def products_count(self) -> int | None:
        """How many products the store has, for a progress bar's total; None when this API
        version does not answer it (the bar then shows a count that grows).

        `limit: null` asks for the exact figure: since 2025-07 every count field stops at
        10,000 unless told otherwise, and a bar that ends past its total is worse than none."""
        try:
            data = self._graphql("{ productsCount(limit: null) { count precision } }")
        except ConnectorError as exc:
            if type(exc) is ConnectorError:  # the query itself was refused (an unknown field)
                return None
            raise
        count = (data.get("productsCount") or {}).get("count")
        return count if isinstance(count, int) and count >= 0 else None

    def products(self, *, page_size: int = PRODUCTS_PAGE) -> Iterator[dict]:
        """The catalog, page by page: dicts of id, title, handle, status, updatedAt."""
        query = (
            "query($first: Int!, $after: String) { products(first: $first, after: $after) {"
            " pageInfo { hasNextPage endCursor } nodes { id title handle status updatedAt } } }"
        )
        after = None
        while True:
            data = self._graphql(
                query, {"first": page_size, "after": after}, expected_cost=2 + page_size
            )
            connection = data.get("products") or {}
            yield from connection.get("nodes") or []
            page = connection.get("pageInfo") or {}
            if not page.get("hasNextPage") or not page.get("endCursor"):
                return
            after = page["endCursor"]

    def register_webhooks(self, callback_url: str, topics) -> list[dict]:
        """Subscribe `callback_url` to each topic ("orders/paid" or ORDERS_PAID).

        Returns one {"topic", "id", "existing"} per topic; a subscription that already exists
        counts as done."""
        mutation = (
            "mutation($topic: WebhookSubscriptionTopic!, $sub: WebhookSubscriptionInput!) {"
            " webhookSubscriptionCreate(topic: $topic, webhookSubscription: $sub) {"
            " webhookSubscription { id topic uri } userErrors { field message } } }"
        )
        results = []
        for topic in topics:
            enum = topic.upper().replace("/", "_")
            data = self._graphql(
                mutation, {"topic": enum, "sub": {"uri": callback_url, "format": "JSON"}}
            )
            outcome = data.get("webhookSubscriptionCreate") or {}
            errors = outcome.get("userErrors") or []
            if any("already been taken" in (e.get("message") or "") for e in errors):
                results.append({"topic": enum, "id": None, "existing": True})
                continue
            if errors or not outcome.get("webhookSubscription"):
                message = "; ".join(e.get("message") or "" for e in errors) or "no subscription"
                raise PermanentError(f"Shopify refused the {enum} webhook: {message}.")
            results.append(
                {"topic": enum, "id": outcome["webhookSubscription"]["id"], "existing": False}
            )
        return results

    def refresh_token(self) -> datetime | None:
        """Renew the client-credentials token now (the periodic task calls this ahead of its
        24-hour expiry). Returns the new expiry, or None for a non-expiring legacy token."""
        if not self.uses_client_credentials:
            return None
        current = self._secret(self.channel, ACCESS)
        ensure_token(
            self.channel,
            obtain=self._client_credentials,
            margin=self.refresh_margin,
            rejected=current,
            lineage="client_secret",
        )
        return self.channel.token_expires_at

    # --- projection ---
    def _project(
        self, order: dict, match: BuyerHint | None, resolve_buyer: Resolver | None
    ) -> OrderProjection:
        total, currency = _money(order.get("totalPriceSet"))
        refunded, _ = _money(order.get("totalRefundedSet"))
        email = order.get("email") or (order.get("customer") or {}).get("email") or ""
        return OrderProjection(
            order_id=str(order.get("id")),
            channel_kind=self.kind,
            status=str(order.get("displayFinancialStatus") or ""),
            purchased_at=_iso(order.get("processedAt") or order.get("createdAt")),
            updated_at=_iso(order.get("updatedAt")),
            total=total,
            currency=currency,
            item_count=int(order.get("subtotalLineItemsQuantity") or 0),
            marketplace=self.shop_domain,
            refunded_total=refunded or Decimal("0"),
            cancelled=bool(order.get("cancelledAt")),
            delivered=order.get("displayFulfillmentStatus") == "FULFILLED",
            buyer_match=compare_buyer(match, email=email or None),
            buyer_ref=(resolve_buyer(email) or "") if (resolve_buyer and email) else "",
        )

    # --- GraphQL with the cost throttle ---
    def _graphql(self, query: str, variables: dict | None = None, *, expected_cost: int = 10):
        waited = 0.0
        rejected = None
        just_waited = False
        while True:
            if not just_waited:
                waited += self._pace(expected_cost, waited)
            just_waited = False
            access = self._token(rejected=rejected)
            response = self._post(
                self.graphql_url,
                json={"query": query, "variables": variables or {}},
                headers={"X-Shopify-Access-Token": access},
            )
            if response.status_code == 401 and rejected is None and self.uses_client_credentials:
                rejected = access  # expired early or revoked: get a new one, once
                continue
            body = self._json(response)
            cost = (body.get("extensions") or {}).get("cost") or {}
            if cost.get("throttleStatus"):
                self.throttle_status = cost["throttleStatus"]
                self._status_at = time.monotonic()
            errors = body.get("errors")
            if errors:
                codes = {((e.get("extensions") or {}).get("code")) for e in errors}
                if "THROTTLED" in codes:
                    wait = self._refill_wait(cost.get("requestedQueryCost") or expected_cost)
                    if waited + wait > self.max_throttle_wait:
                        raise RateLimited(
                            "Shopify's API budget for this store is used up; it will be retried.",
                            retry_after=wait,
                        )
                    self._sleep(wait)
                    waited += wait
                    just_waited = True  # the wait already covered the refill: no pacing again
                    continue
                message = "; ".join(str(e.get("message")) for e in errors)
                if "ACCESS_DENIED" in codes:
                    raise PermanentError(
                        "The Shopify app lacks a permission Flash needs (read_orders, "
                        f"read_products) — grant the access scopes and reinstall it. ({message})"
                    )
                raise ConnectorError(f"Shopify refused the query: {message}")
            return body.get("data") or {}

    def _refill_wait(self, cost: float) -> float:
        status = self.throttle_status or {}
        rate = float(status.get("restoreRate") or 50)
        available = float(status.get("currentlyAvailable") or 0)
        return round(max(0.1, (float(cost) - available) / rate), 3)

    def _pace(self, expected_cost: int, waited: float) -> float:
        """Wait before a call the last throttleStatus says the bucket cannot pay for yet."""
        status = self.throttle_status
        if not status:
            return 0.0
        rate = float(status.get("restoreRate") or 50)
        maximum = float(status.get("maximumAvailable") or expected_cost)
        now_available = float(status.get("currentlyAvailable") or 0) + rate * (
            time.monotonic() - self._status_at
        )
        need = min(expected_cost, maximum)
        if now_available >= need:
            return 0.0
        wait = round((need - now_available) / rate, 3)
        if waited + wait > self.max_throttle_wait:
            raise RateLimited(
                "Shopify's API budget for this store is used up; it will be retried.",
                retry_after=wait,
            )
        self._sleep(wait)
        return wait

    # --- tokens ---
    def _token(self, *, rejected: str | None = None) -> str:
        legacy = self._secret(self.channel, "access_token")
        if legacy:
            if legacy == rejected:
                raise self._rejected()
            return legacy
        if not (
            self._secret(self.channel, "client_id") and self._secret(self.channel, "client_secret")
        ):
            raise PermanentError(
                "Give either an Admin API access token (shpat_…) or the app's client id and "
                "client secret."
            )
        if not self._prefer_memory:
            fresh = usable_token(self.channel, margin=self.refresh_margin, rejected=rejected)
            if fresh:
                return fresh
        return ensure_token(
            self.channel,
            obtain=self._client_credentials,
            margin=self.refresh_margin,
            rejected=rejected,
            lineage="client_secret",
            prefer_memory=self._prefer_memory,
        )

    def _client_credentials(self, source: Channel) -> TokenGrant:
        response = self._post(
            f"{self.api_base}/admin/oauth/access_token",
            data={
                "grant_type": "client_credentials",
                "client_id": self._secret(source, "client_id") or "",
                "client_secret": self._secret(source, "client_secret") or "",
            },
        )
        if response.status_code in (400, 401, 403):
            raise PermanentError(
                "Shopify refused the client id or client secret — copy them again from the Dev "
                "Dashboard, and check that the app is installed on the store."
            )
        body = self._json(response)
        if not body.get("access_token"):
            raise TemporaryError("Shopify answered the token request without a token.")
        log.info("shopify token obtained for channel %s", self.channel.public_id)
        return TokenGrant(
            access_token=body["access_token"],
            expires_at=datetime.now(UTC) + timedelta(seconds=int(body.get("expires_in") or 86399)),
        )

    def _rejected(self) -> PermanentError:
        return PermanentError(
            "Shopify rejected the access token — it was revoked or the app was uninstalled. "
            "Create a new token (or reinstall the app) and save it in Online Shop."
        )

    # --- HTTP ---
    def _post(self, url: str, **kwargs) -> requests.Response:
        try:
            response = self._session.post(url, timeout=self.timeout, **kwargs)
        except requests.Timeout:
            raise TemporaryError(
                f"Shopify did not answer within {self.timeout:g} s; it will be retried."
            ) from None
        except requests.RequestException as exc:
            raise TemporaryError(
                f"Could not reach Shopify ({type(exc).__name__}); it will be retried."
            ) from None
        status = response.status_code
        if status == 401:
            if "access_token" in url:
                return response  # the token endpoint's own refusal, judged by the caller
            if not self.uses_client_credentials:
                raise self._rejected()
        if status == 402:
            raise PermanentError("The Shopify store is frozen (its Shopify bill is unpaid).")
        if status == 403 and "access_token" not in url:
            raise PermanentError(
                "The Shopify app lacks a permission Flash needs (read_orders, read_products)."
            )
        if status == 404:
            raise PermanentError(
                f"There is no Shopify store at {self.shop_domain} — check the store domain."
            )
        if status == 423:
            raise PermanentError("The Shopify store is locked; contact Shopify support.")
        if status == 429:
            raise RateLimited(
                "Shopify asked Flash to slow down; it will be retried.",
                retry_after=_retry_after(response),
            )
        if status >= 500:
            raise TemporaryError(
                f"Shopify had an internal error (HTTP {status}); it will be retried."
            )
        return response

    def _json(self, response: requests.Response) -> dict:
        if response.status_code == 401:
            raise self._rejected()
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise TemporaryError(
                f"Shopify answered with an unreadable response (HTTP {response.status_code}); "
                "it will be retried."
            )
        return body


def _money(value) -> tuple[Decimal | None, str]:
    shop_money = (value or {}).get("shopMoney") or {}
    try:
        amount = (
            Decimal(str(shop_money["amount"])) if shop_money.get("amount") is not None else None
        )
    except InvalidOperation:
        amount = None
    return amount, str(shop_money.get("currencyCode") or "")


def _iso(value) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None
    except ValueError:
        return None


def _retry_after(response: requests.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After") or 2.0))
    except ValueError:
        return 2.0
