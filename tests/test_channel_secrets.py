"""Secrets are write-only: after every page, endpoint, log and error path has seen them, no
plaintext secret is in any HTML, JSON, log line, e-mail or row of the database."""

import json
import logging

import pytest
from django.contrib.admin.models import LogEntry
from django.core import mail
from django.db import connection
from django.test import Client

from channels_app.models import Channel

from .test_channels import PAGE, amazon_form, post_json, tiktok_form

pytestmark = pytest.mark.django_db


def database_dump() -> str:
    """Every row of every table, as text (inside the test's transaction, so nothing is missed)."""
    chunks = []
    with connection.cursor() as cur:
        for table in connection.introspection.table_names(cur):
            cur.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - names from introspection
            chunks.append(json.dumps(cur.fetchall(), default=str))
    return "\n".join(chunks)


def test_no_secret_reaches_html_json_logs_mail_or_database(alice, sandbox_server, demo, caplog):
    caplog.set_level(logging.DEBUG)  # every logger, requests' and urllib3's included
    client = Client()
    client.force_login(alice)
    seen = []  # every body a browser or a script received

    def keep(resp):
        seen.append(resp.content.decode(errors="replace"))
        return resp

    amazon, tiktok, shopify = demo["amazon"], demo["tiktok"], demo["shopify"]
    wrong_secret = "amzn1.oa2-cs.v1.SENTINEL-WRONG-SECRET-7c1d"
    # error paths first: a wrong secret, a malformed one, the platform down
    keep(
        client.post(
            f"{PAGE}amazon/save/", amazon_form(sandbox_server, amazon, client_secret=wrong_secret)
        )
    )
    keep(
        client.post(
            f"{PAGE}amazon/save/",
            amazon_form(sandbox_server, amazon, refresh_token="SENTINEL bad token"),
        )
    )
    # then the connections
    keep(client.post(f"{PAGE}amazon/save/", amazon_form(sandbox_server, amazon), follow=True))
    keep(client.post(f"{PAGE}tiktok/save/", tiktok_form(sandbox_server, tiktok), follow=True))
    keep(
        post_json(
            client,
            "/api/admin/channels",
            {
                "teamId": "alpha",
                "kind": "shopify",
                "name": "Store",
                "config": {
                    "shop_domain": shopify["shop_domain"],
                    "api_base": sandbox_server.shopify_base(shopify["shop_domain"]),
                },
                "secrets": {"access_token": shopify["access_token"]},
            },
        )
    )
    keep(
        post_json(
            client,
            "/api/shopify/connect",
            {
                "shopDomain": shopify["shop_domain"],
                "accessToken": "shpat_SENTINELWRONGTOKEN0000000",
            },
        )
    )
    channels = list(Channel.objects.all())
    assert len(channels) == 3
    rotated_tiktok_token = Channel.objects.get(kind="tiktok").secret("refresh_token")
    for ch in channels:
        keep(client.post(f"{PAGE}{ch.public_id}/ping/", follow=True))
        keep(post_json(client, f"/api/admin/channels/{ch.public_id}/ping", {}))
        keep(client.get(f"{PAGE}?edit={ch.public_id}"))
        keep(client.get(f"/admin/channels_app/channel/{ch.pk}/change/"))
    for tab in ("shopify", "amazon", "tiktok"):
        keep(client.get(f"{PAGE}?tab={tab}"))
    keep(client.get("/api/shopify/status"))
    keep(client.get("/admin/channels_app/channel/"))
    superuser = Client()
    from .factories import UserFactory

    superuser.force_login(UserFactory(username="root@flash.test", is_superuser=True))
    keep(superuser.get("/admin/channels_app/channel/"))
    keep(superuser.get(f"/admin/channels_app/channel/{channels[0].pk}/change/"))

    sentinels = {
        "amazon client secret": amazon["client_secret"],
        "amazon refresh token": amazon["refresh_token"],
        "wrong secret typed": wrong_secret,
        "malformed secret typed": "SENTINEL bad token",
        "tiktok app secret": tiktok["app_secret"],
        "tiktok first refresh token": tiktok["refresh_token"],
        "tiktok rotated refresh token": rotated_tiktok_token,
        "shopify token": shopify["access_token"],
        "wrong shopify token": "shpat_SENTINELWRONGTOKEN0000000",
    }
    places = {
        "pages and JSON": "\n".join(seen),
        "logs": caplog.text,
        "e-mails": "\n".join(m.message().as_string() for m in mail.outbox),
        "database": database_dump(),
        "admin history": json.dumps(list(LogEntry.objects.values()), default=str),
    }
    assert len(caplog.records) > 0 and len(places["database"]) > 1000  # the scan saw things
    leaks = [
        (what, where)
        for what, secret in sentinels.items()
        for where, text in places.items()
        if secret in text
    ]
    assert leaks == []
