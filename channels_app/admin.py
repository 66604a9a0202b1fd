from django.contrib import admin

from loyalty.admin import ReadOnlyAdmin

from .models import Channel, Product, ProductSync, ShopifyOrder, WebhookDelivery


@admin.register(Channel)
class ChannelAdmin(ReadOnlyAdmin):
    """Read-only: connections are made and changed through Save & Verify, which checks them.
    The sealed secrets are never shown, not even as ciphertext."""

    list_display = ("public_id", "name", "kind", "team", "status", "last_checked_at")
    list_filter = ("kind", "status")
    search_fields = ("public_id", "name")
    fields = (
        "public_id",
        "team",
        "kind",
        "name",
        "status",
        "config",
        "secret_hints",
        "last_checked_at",
        "last_check",
        "last_error",
        "token_expires_at",
        "created_at",
    )
    readonly_fields = fields


class ChannelScopedAdmin(ReadOnlyAdmin):
    team_field = "channel__team"

    def _team_id(self, obj):
        return obj.channel.team_id


@admin.register(Product)
class ProductAdmin(ChannelScopedAdmin):
    list_display = ("title", "status", "channel", "updated_at_shop")
    search_fields = ("title", "handle")


@admin.register(ProductSync)
class ProductSyncAdmin(ChannelScopedAdmin):
    list_display = ("pk", "channel", "status", "done", "total", "started_at", "finished_at")


@admin.register(ShopifyOrder)
class ShopifyOrderAdmin(ChannelScopedAdmin):
    """The non-PII projection: there is no buyer e-mail, name or address to show."""

    list_display = (
        "name",
        "gid",
        "channel",
        "financial_status",
        "total",
        "currency",
        "matched_member",
        "outcome",
    )
    list_filter = ("outcome", "financial_status")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ChannelScopedAdmin):
    list_display = ("topic", "event_id", "channel", "status", "received_at", "processed_at")
    list_filter = ("status", "topic")
