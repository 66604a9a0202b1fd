"""The Sandbox: all three platforms' state in one object, plus what tests drive it with —
orders to add, refund or cancel, fault modes, rate limits and call counts."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

from .amazon import AmazonEmulator
from .core import Fault, FaultBoard, Meter
from .shopify import ShopifyEmulator
from .tiktok import TikTokEmulator

PLATFORMS = ("amazon", "tiktok", "shopify")


class Sandbox:
    def __init__(self):
        # One re-entrant lock for all state: requests run on many server threads at once.
        self.lock = threading.RLock()
        self.faults = FaultBoard()
        self.meter = Meter()
        self.amazon = AmazonEmulator(self)
        self.tiktok = TikTokEmulator(self)
        self.shopify = ShopifyEmulator(self)
        self.demo: dict = {}  # credentials and notable ids, filled by seed_demo

    # --- called by the emulators on every API call ---
    def enter(self, platform: str, operation: str) -> Fault | None:
        """Count the call and pick its fault; a "slow" fault sleeps here, outside the lock."""
        self.meter.hit(platform, operation)
        fault = self.faults.take(platform, operation)
        if fault is not None and fault.mode == "slow":
            time.sleep(fault.seconds)
        if fault is not None and fault.mode == "429":
            self.meter.throttle(platform, operation)
        return fault

    # --- faults ---
    def set_fault(
        self,
        platform: str,
        operation: str = "*",
        mode: str = "500",
        *,
        times: int | None = None,
        seconds: float = 0.0,
        retry_after: float = 1.0,
    ) -> None:
        """Make `operation` (or "*": every operation) of `platform` fail.

        Modes: "429" (rate limited), "500", "non_json_500" (an HTML error page), "slow" (sleep
        `seconds`, then answer normally — the client times out), "revoked" (the credentials are
        refused as revoked). `times=n` fails n calls, then the operation works again."""
        if platform not in PLATFORMS:
            raise ValueError(f"Unknown platform {platform!r}")
        self.faults.set(platform, operation, Fault(mode, times, seconds, retry_after))

    def clear_faults(self, platform: str | None = None, operation: str | None = None) -> None:
        self.faults.clear(platform, operation)

    # --- rate limits and counters ---
    def set_rate_limit(self, operation: str, rate: float, burst: int) -> None:
        """Amazon's per-seller token bucket for one operation (getOrder, searchOrders,
        listFinancialEvents, …)."""
        self.amazon.set_rate_limit(operation, rate, burst)

    def set_shopify_bucket(self, shop: str, maximum: float, restore_rate: float) -> None:
        self.shopify.set_bucket(shop, maximum, restore_rate)

    def call_count(self, platform: str, operation: str) -> int:
        return self.meter.calls[f"{platform}.{operation}"]

    def throttled_count(self, platform: str, operation: str) -> int:
        return self.meter.throttled[f"{platform}.{operation}"]

    def calls(self) -> dict:
        return {"calls": dict(self.meter.calls), "throttled": dict(self.meter.throttled)}

    def reset_calls(self) -> None:
        self.meter.reset()

    # --- orders ---
    def _emulator(self, platform: str):
        if platform not in PLATFORMS:
            raise ValueError(f"Unknown platform {platform!r}")
        return getattr(self, platform)

    def add_order(self, platform: str, owner: str, **fields) -> str:
        """Add an order; `owner` is the Amazon seller id, the TikTok shop id or the Shopify
        store domain. Returns the platform's order id (a GID for Shopify)."""
        if platform == "amazon":
            return self.amazon.add_order(seller_id=owner, **fields).order_id
        if platform == "tiktok":
            return self.tiktok.add_order(shop_id=owner, **fields).id
        return self._emulator(platform).add_order(owner, **fields).gid

    def update_order(self, platform: str, order_id: str, **changes):
        """Change fields of an order (status, …) and bump its update time."""
        return self._emulator(platform).touch(order_id, **changes)

    def refund_order(self, platform: str, order_id: str, amount=None):
        """Refund all or part of an order (all of what is left by default); its update time
        moves so changed-order searches find it. Amazon and TikTok keep refunds outside their
        Orders APIs: each refund there is also posted as its own event with its own id, served
        by Amazon's Finances API (listFinancialEvents) and TikTok's Return & Refund API
        (searchReturns, a completed REFUND). Nothing is posted once nothing is left."""
        if platform == "shopify":
            return self.shopify.refund(order_id, amount)
        emulator = self._emulator(platform)
        with self.lock:
            order = emulator.orders[order_id]
            left = order.total - order.refunded
            amount = left if amount is None else min(Decimal(str(amount)), left)
            if amount > 0:
                if platform == "amazon":
                    self.amazon.record_refund(order_id, amount)
                else:
                    self.tiktok.add_return(order_id, amount)
            return emulator.touch(order_id, refunded=order.refunded + amount)

    def cancel_order(self, platform: str, order_id: str):
        if platform == "shopify":
            return self.shopify.cancel(order_id)
        if platform == "tiktok":
            return self.tiktok.touch(
                order_id, status="CANCELLED", cancel_reason="Buyer requested cancellation"
            )
        return self._emulator(platform).touch(order_id, status="CANCELLED")

    def expire_access_tokens(self, platform: str | None = None) -> None:
        for name in (platform,) if platform else PLATFORMS:
            self._emulator(name).expire_access_tokens()

    # --- Shopify webhooks out ---
    def send_shopify_webhook(self, url: str, **kwargs):
        """See ShopifyEmulator.send_webhook: POST a signed webhook to `url`."""
        return self.shopify.send_webhook(url, **kwargs)

    def summary(self) -> dict:
        with self.lock:
            return {
                "amazon": {
                    "sellers": sorted(self.amazon.sellers),
                    "orders": len(self.amazon.orders),
                    "refund_events": len(self.amazon.refunds),
                },
                "tiktok": {
                    "sellers": sorted(self.tiktok.sellers),
                    "orders": len(self.tiktok.orders),
                    "returns": len(self.tiktok.returns),
                },
                "shopify": {
                    "shops": {
                        domain: {
                            "products": len(shop.products),
                            "orders": len(shop.orders),
                            "webhooks": len(shop.webhooks),
                        }
                        for domain, shop in self.shopify.shops.items()
                    }
                },
                "faults": self.faults.snapshot(),
                **self.calls(),
            }
