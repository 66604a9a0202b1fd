"""Where the outbox's events go: a team's signed outbound webhooks and its e-mail automations."""

from django.db import models

from loyalty.models import Member, OutboxEvent, Team, public_id


def endpoint_id() -> str:
    return public_id("wh_")


class WebhookEndpoint(models.Model):
    """A URL of the brand's that receives events, signed with a secret only it and we know."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="webhook_endpoints")
    public_id = models.CharField(max_length=32, unique=True, editable=False, default=endpoint_id)
    url = models.URLField(max_length=500)
    sealed_secret = models.TextField(editable=False, help_text="vault-sealed signing secret")
    secret_hint = models.CharField(max_length=4, blank=True, editable=False)
    event_types = models.JSONField(default=list, blank=True, help_text="Empty = every event")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return self.url


class DeliveryState(models.TextChoices):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed", "failed (gave up)"


class EventDelivery(models.Model):
    """One event sent (or being retried) to one endpoint: the delivery log."""

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.ForeignKey(OutboxEvent, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(
        max_length=10, choices=DeliveryState.choices, default=DeliveryState.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event"], name="one_delivery_per_event"),
        ]
        indexes = [models.Index(fields=["state", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.event.event_type} → {self.endpoint.url} ({self.state})"


class AutomationKind(models.TextChoices):
    WELCOME = "welcome", "Welcome e-mail on enrollment"
    POST_PURCHASE = "post_purchase", "“You just earned N points” after a purchase"
    CROSS_SELL = "cross_sell", "Cross-sell after a repeat purchase"


class EmailAutomation(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="automations")
    kind = models.CharField(max_length=20, choices=AutomationKind.choices)
    enabled = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "kind"], name="uniq_automation_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({'on' if self.enabled else 'off'})"


class EmailSent(models.Model):
    """An automation's e-mail for one event, sent once however often the event is seen."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20, choices=AutomationKind.choices)
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    event = models.ForeignKey(OutboxEvent, on_delete=models.CASCADE, related_name="+")
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "event"], name="one_email_per_event"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} to {self.member_id}"
