"""Reads for the console, each scoped to one team."""

from django.db.models import Count, Q, QuerySet

from loyalty.models import Team

from .models import AutomationKind, DeliveryState, EmailAutomation, EventDelivery, WebhookEndpoint


def team_endpoints(*, team: Team) -> QuerySet[WebhookEndpoint]:
    return (
        WebhookEndpoint.objects.filter(team=team)
        .annotate(
            pending_count=Count("deliveries", filter=Q(deliveries__state=DeliveryState.PENDING)),
            failed_count=Count("deliveries", filter=Q(deliveries__state=DeliveryState.FAILED)),
        )
        .order_by("created_at", "pk")
    )


def endpoint_deliveries(*, endpoint: WebhookEndpoint) -> QuerySet[EventDelivery]:
    return (
        EventDelivery.objects.filter(endpoint=endpoint)
        .select_related("event")
        .order_by("-created_at", "-pk")
    )


def team_automations(*, team: Team) -> list[tuple[str, str, bool]]:
    """(kind, label, enabled) for every automation kind, off unless switched on."""
    enabled = dict(EmailAutomation.objects.filter(team=team).values_list("kind", "enabled"))
    return [(kind, label, enabled.get(kind, False)) for kind, label in AutomationKind.choices]
