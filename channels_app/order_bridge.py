"""The Shopify order bridge: paid orders earn by the formula, refunds and cancellations claw
back, exactly once — fed by webhooks and by the periodic sync loop alike.

PII rule: the buyer's e-mail is used once, in memory, to find the member, and then dropped.
What is kept (ShopifyOrder, WebhookDelivery.projection) and what travels to a task (ids) holds
no e-mail, name, address or phone."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from celery import shared_task
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from loyalty import errors, services
from loyalty.models import Member, MemberStatus, Source, Team

from .connectors import connector_for
from .models import Channel, DeliveryStatus, OrderOutcome, ShopifyOrder, WebhookDelivery

log = logging.getLogger(__name__)
PAID = {"paid", "partially_refunded", "refunded"}
ORDER_TOPICS = {"orders/paid", "orders/fulfilled", "orders/cancelled", "orders/updated"}
REFUND_TOPIC = "refunds/create"


class BadPayload(ValueError):
    """The webhook body is not an order (or refund) we can read."""


def match_member(team: Team, email: str | None) -> Member | None:
    """Conservative: an active member of this team with exactly this e-mail, or nobody."""
    email = (email or "").strip().lower()
    if not email:
        return None
    return Member.objects.filter(team=team, email=email, status=MemberStatus.ACTIVE).first()


def _money(value) -> str | None:
    try:
        return str(Decimal(str(value)).quantize(Decimal("0.01"))) if value is not None else None
    except InvalidOperation:
        raise BadPayload(f"'{value}' is not an amount") from None


def project_order(payload: dict, team: Team) -> dict:
    """A REST order payload → the non-PII projection kept and processed."""
    if not isinstance(payload, dict) or not payload.get("id"):
        raise BadPayload("the order has no id")
    gid = payload.get("admin_graphql_api_id") or f"gid://shopify/Order/{payload['id']}"
    total = _money(payload.get("total_price"))
    current = _money(payload.get("current_total_price"))
    member = match_member(
        team, payload.get("email") or (payload.get("customer") or {}).get("email")
    )
    return {
        "gid": gid,
        "name": str(payload.get("name") or "")[:50],
        "financial_status": str(payload.get("financial_status") or "").lower(),
        "fulfillment_status": str(payload.get("fulfillment_status") or "").lower(),
        "total": total,
        "refunded": str(Decimal(total) - Decimal(current)) if total and current else "0.00",
        "currency": str(payload.get("currency") or "").upper()[:3],
        "cancelled": bool(payload.get("cancelled_at")),
        "ordered_at": payload.get("processed_at") or payload.get("created_at"),
        "updated_at": payload.get("updated_at"),
        "member_id": member.pk if member else None,
    }


def project_refund(payload: dict) -> dict:
    if not isinstance(payload, dict) or not payload.get("id") or not payload.get("order_id"):
        raise BadPayload("the refund has no id or order id")
    amount = sum(
        (
            Decimal(_money(t.get("amount")) or "0")
            for t in payload.get("transactions") or []
            if t.get("kind") == "refund" and t.get("status") == "success"
        ),
        Decimal("0"),
    )
    return {
        "refund_id": str(payload["id"]),
        "gid": f"gid://shopify/Order/{payload['order_id']}",
        "amount": str(amount),
    }


def _when(value) -> datetime | None:
    if isinstance(value, datetime):
        return value
    return parse_datetime(value) if value else None


# --- settling orders -------------------------------------------------------------------------


def settle_order(channel: Channel, proj: dict) -> ShopifyOrder:
    """Record what the order is now and act on it: award once paid, claw back if cancelled."""
    with transaction.atomic():
        order, _ = ShopifyOrder.objects.select_for_update().get_or_create(
            channel=channel, gid=proj["gid"]
        )
        updated = _when(proj.get("updated_at"))
        # A delivery replayed days later must not turn a newer state back into an older one.
        if order.updated_at_shop is None or (updated and updated >= order.updated_at_shop):
            order.name = proj["name"] or order.name
            order.financial_status = proj["financial_status"]
            order.fulfillment_status = proj["fulfillment_status"]
            order.total = Decimal(proj["total"]) if proj.get("total") else order.total
            order.currency = proj["currency"] or order.currency
            order.refunded_total = Decimal(proj.get("refunded") or "0")
            order.cancelled = order.cancelled or proj["cancelled"]
            order.ordered_at = _when(proj.get("ordered_at")) or order.ordered_at
            order.updated_at_shop = updated or order.updated_at_shop
        if proj.get("member_id"):
            order.member_id, order.matched_member = proj["member_id"], True
        order.save()
    _award(channel, order)
    if order.cancelled:
        _refund(channel, order, refund_key="cancel", amount=order.total)
    return order


def _award(channel: Channel, order: ShopifyOrder) -> None:
    if order.outcome in (OrderOutcome.AWARDED, OrderOutcome.HELD):
        return
    if order.financial_status not in PAID or order.total is None:
        _set_outcome(order, OrderOutcome.NOT_PAID)
        return
    if order.member_id is None:
        _set_outcome(order, OrderOutcome.NO_MEMBER)  # never a guess, never an enrollment
        return
    member = Member.objects.filter(pk=order.member_id, team=channel.team).first()
    if member is None:
        _set_outcome(order, OrderOutcome.NO_MEMBER)
        return
    try:
        result = services.points_award(
            member=member,
            key=f"shopify-order:{order.gid}",
            source=Source.SHOPIFY,
            amount=order.total,
            currency=order.currency,
            description=f"Shopify order {order.name or order.gid}",
        )
    except errors.MemberBlocked:
        _set_outcome(order, OrderOutcome.IGNORED)
        return
    held = result.held is not None and result.entry is None and result.pending is None
    _set_outcome(order, OrderOutcome.HELD if held else OrderOutcome.AWARDED)


def _set_outcome(order: ShopifyOrder, outcome: str) -> None:
    order.outcome, order.processed_at = outcome, timezone.now()
    ShopifyOrder.objects.filter(pk=order.pk).update(
        outcome=outcome, processed_at=order.processed_at
    )


def _refund(channel: Channel, order: ShopifyOrder, *, refund_key: str, amount) -> None:
    if not amount or Decimal(amount) <= 0:
        return
    services.purchase_refund(
        team=channel.team,
        key=f"shopify-order:{order.gid}",
        refund_amount=amount,
        refund_key=f"claw-back:shopify-order:{order.gid}:{refund_key}",
        source=Source.SHOPIFY,
        description=f"Shopify order {order.name or order.gid}: "
        + ("cancelled" if refund_key == "cancel" else "refund"),
    )


def apply_refund(channel: Channel, proj: dict) -> None:
    order = ShopifyOrder.objects.filter(channel=channel, gid=proj["gid"]).first()
    if order is None:
        order = ShopifyOrder.objects.create(channel=channel, gid=proj["gid"])
    _refund(channel, order, refund_key=f"refund:{proj['refund_id']}", amount=proj["amount"])


# --- the two feeds ---------------------------------------------------------------------------


@shared_task
def process_webhook(delivery_id: int) -> str:
    """Settle one recorded delivery (the webhook view answered Shopify already)."""
    delivery = WebhookDelivery.objects.select_related("channel__team").get(pk=delivery_id)
    if delivery.status != DeliveryStatus.RECEIVED:
        return delivery.status
    try:
        if delivery.topic == REFUND_TOPIC:
            apply_refund(delivery.channel, delivery.projection)
        else:
            settle_order(delivery.channel, delivery.projection)
    except errors.LoyaltyError as exc:
        _finish(delivery, DeliveryStatus.FAILED, exc.message)
        return DeliveryStatus.FAILED
    _finish(delivery, DeliveryStatus.PROCESSED, "")
    return DeliveryStatus.PROCESSED


def _finish(delivery: WebhookDelivery, status: str, detail: str) -> None:
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=status, detail=detail[:300], processed_at=timezone.now()
    )


def bridge_changed_orders(channel: Channel) -> int:
    """The sync loop's half: orders changed since the last pass, through the same settling.

    Catches what a webhook missed (awards and cancellations; refunds arrive as refunds/create
    webhooks, which Shopify retries for 4 hours)."""
    since = _when(channel.config.get("orders_watermark")) or channel.created_at
    started = timezone.now()
    members: dict[str, int | None] = {}

    def resolve(email: str) -> str:
        key = email.strip().lower()
        if key not in members:
            member = match_member(channel.team, key)
            members[key] = member.pk if member else None
        return str(members[key] or "")

    seen = 0
    for p in connector_for(channel).changed_orders(since, resolve_buyer=resolve):
        settle_order(
            channel,
            {
                "gid": p.order_id,
                "name": "",
                "financial_status": p.status.lower(),
                "fulfillment_status": "fulfilled" if p.delivered else "",
                "total": str(p.total) if p.total is not None else None,
                "refunded": str(p.refunded_total),
                "currency": p.currency,
                "cancelled": p.cancelled,
                "ordered_at": p.purchased_at,
                "updated_at": p.updated_at,
                "member_id": int(p.buyer_ref) if p.buyer_ref else None,
            },
        )
        seen += 1
    # The watermark moves only after a complete pass, so an interrupted one is simply redone.
    with transaction.atomic():
        row = Channel.objects.select_for_update().get(pk=channel.pk)
        # A little overlap: Shopify's search index trails its writes; settling is idempotent.
        row.config["orders_watermark"] = (started - timedelta(minutes=5)).isoformat()
        row.save(update_fields=["config"])
    return seen
