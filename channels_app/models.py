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
