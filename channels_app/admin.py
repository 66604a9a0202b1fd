from django.contrib import admin

from loyalty.admin import ReadOnlyAdmin

from .models import Channel


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
