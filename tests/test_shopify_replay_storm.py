"""Shopify delivers at least once, sometimes twice: 20 deliveries of one paid order, 10 of them
at the same instant, plus the sync loop seeing it too — one award."""

import pytest
from django.test import Client

from channels_app import order_bridge
from channels_app.models import ShopifyOrder, WebhookDelivery
from loyalty import services
from loyalty.models import LedgerEntry, Member, OutboxEvent

from .sandbox_fixtures import make_channel, shopify_config
from .test_concurrency import run_concurrently
from .test_shopify_orders import _send

pytestmark = pytest.mark.django_db(transaction=True)


def test_replay_storm_awards_once(team_a, sandbox_server, sandbox, demo):
    creds = demo["shopify"]
    store = make_channel(
        team_a,
        "shopify",
        config=shopify_config(sandbox_server, creds),
        secrets={"access_token": creds["access_token"], "client_secret": creds["client_secret"]},
    )
    member = services.member_enroll(team=team_a, email="storm@example.com")
    order = sandbox.shopify.add_order(
        creds["shop_domain"], email="storm@example.com", total="64.00"
    )

    def deliver(i):
        # half of them are Shopify's duplicate of one event, half new events for the order
        event_id = "evt-dup" if i % 2 else None
        return _send(Client(), sandbox, demo, "orders/paid", order, event_id=event_id).status_code

    first_ten = run_concurrently(10, deliver)
    rest = [deliver(i) for i in range(10, 20)]
    order_bridge.bridge_changed_orders(store)
    assert set(first_ten + rest) == {200}
    assert LedgerEntry.objects.filter(idempotency_key=f"shopify-order:{order.gid}").count() == 1
    assert Member.objects.get(pk=member.pk).balance == 64
    assert OutboxEvent.objects.filter(event_type="purchase.first").count() == 1
    assert ShopifyOrder.objects.count() == 1
    assert WebhookDelivery.objects.filter(event_id="evt-dup").count() == 1
