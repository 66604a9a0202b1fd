"""Sales channels: one row per connection a team made to Shopify, Amazon or TikTok Shop.

Secrets live only sealed (see vault.py); the plaintext exists in memory while a connector
uses it, and never in a form, a page, a log, an e-mail or a task argument."""

from django.db import models

from loyalty.models import Team, public_id

from . import vault


def channel_id() -> str:
    return public_id("ch_")


class Kind(models.TextChoices):
    SHOPIFY = "shopify", "Shopify"
    AMAZON = "amazon", "Amazon"
    TIKTOK = "tiktok", "TikTok Shop"


class Status(models.TextChoices):
    CONNECTED = "connected"
    NEEDS_ATTENTION = "needs_attention", "needs attention"
    DISCONNECTED = "disconnected"


class Channel(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="channels")
    public_id = models.CharField(max_length=32, unique=True, editable=False, default=channel_id)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    name = models.CharField(max_length=100)
    config = models.JSONField(default=dict, help_text="Public settings (no secrets)")
    sealed_secrets = models.JSONField(
        default=dict, editable=False, help_text="name → vault-sealed value"
    )
    secret_hints = models.JSONField(
        default=dict, editable=False, help_text="name → last four characters, for the UI"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.CONNECTED)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_check = models.JSONField(default=dict, blank=True, help_text="What Save & Verify saw")
    last_error = models.CharField(max_length=500, blank=True)
    # Short-lived tokens a connector obtains itself are sealed as "runtime_<name>" secrets;
    # this is when the current access token stops working (absolute, from the platform).
    token_expires_at = models.DateTimeField(null=True, blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["team", "kind", "created_at"]
        constraints = [
            models.UniqueConstraint(fields=["team", "kind", "name"], name="uniq_channel_name"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.name}"

    def _context(self, name: str) -> str:
        return f"{self.public_id}:{name}"

    def secret(self, name: str) -> str | None:
        sealed = self.sealed_secrets.get(name)
        return vault.open_sealed(sealed, context=self._context(name)) if sealed else None

    def set_secret(self, name: str, value: str) -> None:
        self.sealed_secrets[name] = vault.seal(value, context=self._context(name))
        self.secret_hints[name] = value[-4:] if len(value) >= 12 else ""


class Product(models.Model):
    """A Shopify product synced for campaigns (catalog data only)."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="products")
    gid = models.CharField(max_length=100)
    title = models.CharField(max_length=300)
    handle = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=20, blank=True)
    updated_at_shop = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title"]
        constraints = [
            models.UniqueConstraint(fields=["channel", "gid"], name="uniq_product_per_channel"),
        ]

    def __str__(self) -> str:
        return self.title


class SyncStatus(models.TextChoices):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ProductSync(models.Model):
    """One product-catalog sync: its progress is what the Online Shop tab polls."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="syncs")
    status = models.CharField(max_length=10, choices=SyncStatus.choices, default=SyncStatus.RUNNING)
    total = models.PositiveIntegerField(null=True, blank=True, help_text="When known")
    done = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # One running sync per channel: a second Sync Now joins the first.
            models.UniqueConstraint(
                fields=["channel"],
                condition=models.Q(status="running"),
                name="one_running_sync_per_channel",
            ),
        ]

    def __str__(self) -> str:
        return f"sync {self.pk} ({self.status})"


class OrderOutcome(models.TextChoices):
    PENDING = "pending", "not processed yet"
    AWARDED = "awarded"
    HELD = "held"
    NO_MEMBER = "no_member", "no member with that e-mail"
    NOT_PAID = "not_paid", "not paid"
    IGNORED = "ignored"


class ShopifyOrder(models.Model):
    """The non-PII projection of a Shopify order: no e-mail, name, address or phone — only
    whether the buyer matched a member, and which."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="orders")
    gid = models.CharField(max_length=100)
    name = models.CharField(max_length=50, blank=True, help_text="The shop's order name, #1001")
    financial_status = models.CharField(max_length=30, blank=True)
    fulfillment_status = models.CharField(max_length=30, blank=True)
    total = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    refunded_total = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    cancelled = models.BooleanField(default=False)
    ordered_at = models.DateTimeField(null=True, blank=True)
    updated_at_shop = models.DateTimeField(null=True, blank=True)
    matched_member = models.BooleanField(default=False)
    member = models.ForeignKey(
        "loyalty.Member", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    outcome = models.CharField(
        max_length=20, choices=OrderOutcome.choices, default=OrderOutcome.PENDING
    )
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["channel", "gid"], name="uniq_shopify_order"),
        ]

    def __str__(self) -> str:
        return self.name or self.gid


class DeliveryStatus(models.TextChoices):
    RECEIVED = "received"
    PROCESSED = "processed"
    IGNORED = "ignored"
    FAILED = "failed"


class WebhookDelivery(models.Model):
    """One Shopify webhook delivery as received: its ids and a non-PII projection of the
    payload (the buyer's e-mail was matched to a member on arrival and then dropped)."""

    channel = models.ForeignKey(
        Channel, null=True, on_delete=models.CASCADE, related_name="webhook_deliveries"
    )
    topic = models.CharField(max_length=50)
    webhook_id = models.CharField(max_length=100, blank=True)
    event_id = models.CharField(max_length=100, blank=True)
    triggered_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    projection = models.JSONField(default=dict, help_text="Non-PII fields of the order/refund")
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.RECEIVED
    )
    detail = models.CharField(max_length=300, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        constraints = [
            # Shopify sometimes delivers an event twice: the second is recorded as nothing.
            models.UniqueConstraint(
                fields=["channel", "event_id"],
                condition=~models.Q(event_id=""),
                name="uniq_shopify_event",
            ),
        ]
        indexes = [models.Index(fields=["channel", "-received_at"])]

    def __str__(self) -> str:
        return f"{self.topic} {self.event_id or self.webhook_id}"
