"""POST /webhooks/shopify — verify, record, answer fast; a task does the rest.

Shopify wants a 2xx within 5 seconds and retries otherwise, so this view only checks the
signature, projects the payload (matching the buyer's e-mail to a member in memory, then
dropping it), records the delivery and enqueues its id."""

import base64
import hashlib
import hmac
import json
import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.http import JsonResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import order_bridge
from .models import Channel, DeliveryStatus, Kind, WebhookDelivery

log = logging.getLogger(__name__)
ROTATION_GRACE = timedelta(hours=1)  # Shopify may sign with the old secret for up to an hour


def _answer(status: int, message: str) -> JsonResponse:
    return JsonResponse({"status": status, "message": message}, status=status)


def signing_secrets(channel: Channel) -> list[str]:
    secrets = [channel.secret("client_secret")]
    rotated = parse_datetime(channel.config.get("client_secret_rotated_at") or "")
    if rotated and timezone.now() - rotated < ROTATION_GRACE:
        secrets.append(channel.secret("previous_client_secret"))
    return [s for s in secrets if s]


def _signed_by(body: bytes, signature: str, secret: str) -> bool:
    digest = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(digest, signature)


@csrf_exempt
@require_POST
def shopify(request):
    domain = request.headers.get("X-Shopify-Shop-Domain", "").strip().lower()
    channels = list(
        Channel.objects.filter(kind=Kind.SHOPIFY, config__shop_domain=domain).select_related("team")
    )
    if not domain or not channels:
        return _answer(404, "No connected store with that domain.")
    signature = request.headers.get("X-Shopify-Hmac-Sha256", "")
    body = request.body
    channel = next(
        (ch for ch in channels if any(_signed_by(body, signature, s) for s in signing_secrets(ch))),
        None,
    )
    if channel is None:
        log.warning("shopify webhook with a bad signature for %s", domain)
        return _answer(401, "The HMAC signature does not match.")

    topic = request.headers.get("X-Shopify-Topic", "")
    delivery = WebhookDelivery(
        channel=channel,
        topic=topic[:50],
        webhook_id=request.headers.get("X-Shopify-Webhook-Id", "")[:100],
        event_id=request.headers.get("X-Shopify-Event-Id", "")[:100],
        triggered_at=parse_datetime(request.headers.get("X-Shopify-Triggered-At", "") or "")
        if request.headers.get("X-Shopify-Triggered-At")
        else None,
    )
    try:
        payload = json.loads(body)
        if topic == order_bridge.REFUND_TOPIC:
            delivery.projection = order_bridge.project_refund(payload)
        elif topic in order_bridge.ORDER_TOPICS:
            delivery.projection = order_bridge.project_order(payload, channel.team)
        else:
            delivery.status, delivery.detail = DeliveryStatus.IGNORED, "topic not handled"
    except (ValueError, order_bridge.BadPayload) as exc:
        # Recorded (ids only), answered 400: Shopify's retry will not make it readable.
        reason = str(exc) if isinstance(exc, order_bridge.BadPayload) else "malformed JSON"
        delivery.status, delivery.detail = DeliveryStatus.FAILED, reason
        _record(delivery)
        return _answer(400, f"Cannot read this {topic or 'webhook'}: {reason}.")
    if not _record(delivery):
        return _answer(200, "Duplicate delivery; already recorded.")
    if delivery.status == DeliveryStatus.RECEIVED:
        transaction.on_commit(lambda: order_bridge.process_webhook.delay(delivery.pk))
    return _answer(200, "Received.")


def _record(delivery: WebhookDelivery) -> bool:
    """Insert; False when this event id was recorded before (Shopify delivers twice)."""
    try:
        with transaction.atomic():
            delivery.save()
    except IntegrityError:
        return False
    return True
