"""Writes for the console: webhook endpoints, replays, and the e-mail automation switches.

Views stay thin and call these. An endpoint's signing secret is returned once by
``endpoint_create`` and otherwise exists only sealed by the vault (bound to the endpoint's id).
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from channels_app.vault import open_sealed, seal
from loyalty import errors
from loyalty.models import Team

from .catalog import EVENT_TYPE_NAMES, EVENT_TYPES
from .models import AutomationKind, DeliveryState, EmailAutomation, EventDelivery, WebhookEndpoint
from .signing import new_secret

log = logging.getLogger(__name__)

MAX_ENDPOINTS_PER_TEAM = 20
_url_ok = URLValidator(schemes=["http", "https"])


def secret_context(endpoint: WebhookEndpoint) -> str:
    # Bound to the endpoint: a sealed secret copied onto another endpoint will not open.
    return f"{endpoint.public_id}:secret"


def require_https() -> bool:
    return bool(getattr(settings, "EVENTS_REQUIRE_HTTPS", not settings.DEBUG))


def clean_url(url: str) -> str:
    url = (url or "").strip()
    if not url or len(url) > 500:
        raise errors.InvalidInput("Enter the endpoint's URL (at most 500 characters).", field="url")
    try:
        _url_ok(url)
    except ValidationError:
        raise errors.InvalidInput(
            "Enter a full http:// or https:// URL, e.g. https://hooks.example.com/flash.",
            field="url",
        ) from None
    if require_https() and urlsplit(url).scheme != "https":
        raise errors.InvalidInput(
            "Use an https:// URL: events carry member data and must be encrypted in transit.",
            field="url",
        )
    return url


def clean_event_types(event_types) -> list[str]:
    """Known types in catalog order; empty means every event."""
    chosen = set(event_types or ())
    if unknown := chosen - EVENT_TYPE_NAMES:
        raise errors.InvalidInput(
            f"Unknown event type: {', '.join(sorted(unknown))}.", field="event_types"
        )
    return [name for name, _ in EVENT_TYPES if name in chosen]


@sensitive_variables("secret")
def endpoint_create(*, team: Team, url: str, event_types=None) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its signing secret, which is never stored in the clear nor shown
    again (the caller shows it once)."""
    url = clean_url(url)
    types = clean_event_types(event_types)
    if WebhookEndpoint.objects.filter(team=team).count() >= MAX_ENDPOINTS_PER_TEAM:
        raise errors.InvalidInput(
            f"A team can have at most {MAX_ENDPOINTS_PER_TEAM} endpoints; delete one first."
        )
    secret = new_secret()
    endpoint = WebhookEndpoint(team=team, url=url, event_types=types)  # public_id is set here
    endpoint.sealed_secret = seal(secret, context=secret_context(endpoint))
    endpoint.secret_hint = secret[-4:]
    endpoint.save()
    log.info("webhook endpoint %s created for team %s", endpoint.public_id, team.slug)
    return endpoint, secret


def endpoint_secret(*, endpoint: WebhookEndpoint) -> str:
    """The plaintext signing secret, for signing only: never log, store or show it."""
    return open_sealed(endpoint.sealed_secret, context=secret_context(endpoint))


def endpoint_set_active(*, endpoint: WebhookEndpoint, active: bool) -> WebhookEndpoint:
    """Disabling pauses: no new deliveries are made for it and pending retries wait; enabling
    resumes the retries that fell due meanwhile."""
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(active=active)
    endpoint.active = active
    log.info("webhook endpoint %s %s", endpoint.public_id, "enabled" if active else "disabled")
    return endpoint


def endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    """Removes the endpoint with its delivery log; nothing more is sent to it."""
    log.info("webhook endpoint %s deleted", endpoint.public_id)
    endpoint.delete()


def delivery_replay(*, delivery: EventDelivery) -> EventDelivery:
    """Send an event again: back to pending with a fresh back-off schedule, due now.

    A worker still busy with an earlier attempt cannot overwrite this (its outcome is written
    only if the attempt it claimed is still current, see ``dispatch.delivery_attempt``)."""
    from . import tasks  # tasks import the dispatcher, which imports this module

    now = timezone.now()
    with transaction.atomic():
        EventDelivery.objects.filter(pk=delivery.pk).update(
            state=DeliveryState.PENDING, attempts=0, next_attempt_at=now, delivered_at=None
        )
        pk = delivery.pk
        transaction.on_commit(lambda: tasks.deliver.delay(pk), robust=True)
    delivery.refresh_from_db()
    return delivery


def automation_set(*, team: Team, kind: str, enabled: bool) -> EmailAutomation:
    if kind not in AutomationKind.values:
        raise errors.InvalidInput(f"Unknown automation: {kind}.")
    automation, _ = EmailAutomation.objects.update_or_create(
        team=team, kind=kind, defaults={"enabled": bool(enabled)}
    )
    return automation
