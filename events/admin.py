from django.contrib import admin

from loyalty.admin import ReadOnlyAdmin

from .models import EmailAutomation, EmailSent, EventDelivery, WebhookEndpoint


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyAdmin):
    """Endpoints are managed in Console → Webhooks; the sealed secret is never shown."""

    list_display = ("public_id", "url", "team", "active", "created_at")
    fields = ("public_id", "team", "url", "event_types", "active", "secret_hint", "created_at")
    readonly_fields = fields


@admin.register(EventDelivery)
class EventDeliveryAdmin(ReadOnlyAdmin):
    team_field = "endpoint__team"
    list_display = ("event", "endpoint", "state", "attempts", "last_status", "delivered_at")
    list_filter = ("state",)
    list_select_related = ("event", "endpoint")

    def _team_id(self, obj):
        return obj.endpoint.team_id


@admin.register(EmailAutomation)
class EmailAutomationAdmin(ReadOnlyAdmin):
    list_display = ("kind", "team", "enabled")


@admin.register(EmailSent)
class EmailSentAdmin(ReadOnlyAdmin):
    list_display = ("kind", "team", "member", "sent_at")
