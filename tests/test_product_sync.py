"""Shopify product sync (Sync Now and the periodic loop) against the emulator: paging, upserts,
removals, joining a running run, throttling, faults, and who may start or watch a run."""

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from channels_app import product_sync, tasks
from channels_app.connectors.shopify import ShopifyConnector
from channels_app.models import Channel, Product, ProductSync
from channels_app.product_sync import product_sync_start
from channels_app.sandbox.shopify import ShopifyEmulator

from .sandbox_fixtures import make_channel, shopify_config

pytestmark = pytest.mark.django_db
PAGE = "/console/settings/online-shop/"


@pytest.fixture
def domain(demo):
    return demo["shopify"]["shop_domain"]


@pytest.fixture
def shop(sandbox, domain):
    return sandbox.shopify.shops[domain]


@pytest.fixture
def catalog_600(sandbox, shop, domain):
    """The demo store's 50 products plus 550 more: three pages of 250."""
    for n in range(600 - len(shop.products)):
        sandbox.shopify.add_product(domain, f"Extra product {n:04}")
    assert len(shop.products) == 600
    return shop


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    """Start (or join) a sync and run what it queued, as a worker would after the commit."""

    def start(channel) -> ProductSync:
        with django_capture_on_commit_callbacks(execute=True):
            sync = product_sync_start(channel=channel)
        sync.refresh_from_db()
        return sync

    return start


@pytest.fixture
def admin_client(alice):
    client = Client()
    client.force_login(alice)
    return client


def post_json(client, path, body=None):
    return client.post(path, data=json.dumps(body or {}), content_type="application/json")


# --- the run ---------------------------------------------------------------------------------


def test_a_sync_pages_through_the_catalog(shopify_channel, catalog_600, sandbox, run):
    sandbox.reset_calls()
    sync = run(shopify_channel)
    assert (sync.status, sync.done, sync.total, sync.error) == ("done", 600, 600, "")
    assert sync.finished_at is not None
    assert sandbox.call_count("shopify", "products") == 3  # 250 + 250 + 100
    assert sandbox.call_count("shopify", "productsCount") == 1
    products = Product.objects.filter(channel=shopify_channel)
    assert products.count() == 600
    assert set(products.values_list("gid", flat=True)) == {p["id"] for p in catalog_600.products}
    first = catalog_600.products[0]
    stored = products.get(gid=first["id"])
    assert (stored.title, stored.handle, stored.status) == (
        first["title"],
        first["handle"],
        first["status"].lower(),
    )
    assert stored.updated_at_shop is not None
    shopify_channel.refresh_from_db()
    assert shopify_channel.last_synced_at >= sync.started_at


def test_a_second_sync_is_idempotent_and_picks_up_changes(shopify_channel, catalog_600, run):
    run(shopify_channel)
    before = dict(Product.objects.values_list("gid", "pk"))
    catalog_600.products[3]["title"] = "Renamed in Shopify"
    second = run(shopify_channel)
    assert (second.status, second.done, second.total) == ("done", 600, 600)
    assert dict(Product.objects.values_list("gid", "pk")) == before  # updated in place
    assert Product.objects.get(gid=catalog_600.products[3]["id"]).title == "Renamed in Shopify"
    assert ProductSync.objects.filter(channel=shopify_channel, status="done").count() == 2


def test_products_removed_from_the_shop_are_removed(shopify_channel, catalog_600, sandbox, run):
    run(shopify_channel)
    with sandbox.lock:
        removed = catalog_600.products[100:130]
        del catalog_600.products[100:130]
    sync = run(shopify_channel)
    assert (sync.done, sync.total) == (570, 570)
    assert Product.objects.count() == 570
    assert not Product.objects.filter(gid__in=[p["id"] for p in removed]).exists()


def test_a_bucket_smaller_than_a_page_still_completes(
    shopify_channel, catalog_600, sandbox, domain, run
):
    # 120 points, refilled fast: a 250-product page (cost 252) could never be paid for, so the
    # run asks for pages the bucket can pay (118), and waits for the refill between them.
    sandbox.set_shopify_bucket(domain, maximum=120, restore_rate=3000)
    sandbox.reset_calls()
    sync = run(shopify_channel)
    assert (sync.status, sync.done) == ("done", 600), sync.error
    assert sandbox.call_count("shopify", "products") == 6
    assert Product.objects.count() == 600


def test_the_cost_throttle_paces_a_full_size_sync(
    shopify_channel, catalog_600, sandbox, domain, run
):
    # Room for one page at a time: every page after the first waits for the bucket to refill.
    sandbox.set_shopify_bucket(domain, maximum=300, restore_rate=2500)
    sync = run(shopify_channel)
    assert (sync.status, sync.done) == ("done", 600), sync.error
    assert Product.objects.count() == 600


def test_without_a_known_total_the_count_grows_and_the_run_completes(
    shopify_channel, catalog_600, monkeypatch, run
):
    # An API version without productsCount: the field is refused, the run goes on without it.
    monkeypatch.delattr(ShopifyEmulator, "_query_productsCount")
    totals = []
    original = product_sync._progress

    def spy(sync_id, **fields):
        totals.append(fields.get("total"))
        original(sync_id, **fields)

    monkeypatch.setattr(product_sync, "_progress", spy)
    sync = run(shopify_channel)
    assert totals == [None, None, None]  # three pages, no total while running
    assert (sync.status, sync.done, sync.total) == ("done", 600, 600)


def test_products_count_is_exact_past_ten_thousand(shopify_channel, shop, domain, sandbox):
    with sandbox.lock:
        template = shop.products[0]
        shop.products.extend(
            {**template, "id": f"gid://shopify/Product/{n}", "legacyResourceId": str(n)}
            for n in range(9_000_000_000, 9_000_010_000)
        )
    assert ShopifyConnector(shopify_channel).products_count() == 10_050
    # Shopify's own default stops at 10,000 and says so
    data = ShopifyConnector(shopify_channel)._graphql("{ productsCount { count precision } }")
    assert data["productsCount"] == {"count": 10_000, "precision": "AT_LEAST"}


# --- joining, stale runs, superseded workers -------------------------------------------------


def test_a_running_sync_is_joined_not_duplicated(
    shopify_channel, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as queued:
        first = product_sync_start(channel=shopify_channel)
        second = product_sync_start(channel=shopify_channel)
    assert second.pk == first.pk
    assert len(queued) == 1  # one task for one run
    assert ProductSync.objects.count() == 1


def test_a_stale_running_sync_is_failed_and_a_new_one_starts(shopify_channel, catalog_600, run):
    stale = ProductSync.objects.create(channel=shopify_channel, done=250, total=600)
    ProductSync.objects.filter(pk=stale.pk).update(
        started_at=timezone.now() - timedelta(minutes=31)
    )
    fresh = run(shopify_channel)
    assert fresh.pk != stale.pk and fresh.status == "done"
    stale.refresh_from_db()
    assert stale.status == "failed" and "stopped reporting progress" in stale.error
    # a late delivery of the old run's task does nothing
    assert product_sync.run_sync(stale.pk) == "failed"


def test_a_recent_running_sync_is_not_stale(shopify_channel, run):
    running = ProductSync.objects.create(channel=shopify_channel)
    ProductSync.objects.filter(pk=running.pk).update(
        started_at=timezone.now() - timedelta(minutes=20)
    )
    assert run(shopify_channel).pk == running.pk


def test_a_long_run_that_still_writes_pages_is_not_stale(shopify_channel, catalog_600, run):
    """A big catalog on a slow bucket takes more than 30 minutes; while it writes pages it
    is alive, and a new Sync Now joins it."""
    first = run(shopify_channel)
    long = ProductSync.objects.create(channel=shopify_channel, done=300, total=600)
    ProductSync.objects.filter(pk=long.pk).update(started_at=first.started_at - timedelta(hours=2))
    assert run(shopify_channel).pk == long.pk  # products were written a moment ago
    Product.objects.update(synced_at=timezone.now() - timedelta(minutes=6))
    fresh = run(shopify_channel)
    assert fresh.pk != long.pk and fresh.status == "done"
    long.refresh_from_db()
    assert long.status == "failed"


def test_a_worker_whose_run_was_failed_meanwhile_stops(shopify_channel, catalog_600, monkeypatch):
    sync = ProductSync.objects.create(channel=shopify_channel)
    original = ShopifyConnector.products

    def products(self, **kwargs):
        for n, node in enumerate(original(self, **kwargs)):
            if n == 250:  # after the first page: marked stale by someone else
                ProductSync.objects.filter(pk=sync.pk).update(status="failed", error="stale")
            yield node

    monkeypatch.setattr(ShopifyConnector, "products", products)
    assert product_sync.run_sync(sync.pk) == "superseded"
    sync.refresh_from_db()
    assert (sync.status, sync.error) == ("failed", "stale")  # never overwritten with "done"
    assert Channel.objects.get(pk=shopify_channel.pk).last_synced_at is None


@pytest.mark.django_db(transaction=True)
def test_a_disconnect_during_a_run_ends_it_quietly(shopify_channel, catalog_600, monkeypatch):
    sync = ProductSync.objects.create(channel=shopify_channel)
    original = ShopifyConnector.products

    def products(self, **kwargs):
        for n, node in enumerate(original(self, **kwargs)):
            if n == 300:
                Channel.objects.filter(pk=shopify_channel.pk).delete()
            yield node

    monkeypatch.setattr(ShopifyConnector, "products", products)
    assert product_sync.run_sync(sync.pk) == "superseded"
    assert not Product.objects.exists() and not ProductSync.objects.exists()


def test_a_broker_that_is_down_fails_the_run_instead_of_blocking_it(
    shopify_channel, monkeypatch, run
):
    def down(*args, **kwargs):
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(tasks.sync_products, "delay", down)
    sync = run(shopify_channel)
    assert sync.status == "failed" and "could not be queued" in sync.error
    monkeypatch.undo()
    assert run(shopify_channel).status == "done"  # the next Sync Now is not stuck behind it


# --- faults ----------------------------------------------------------------------------------


def test_a_500_fails_the_run_with_a_message_and_deletes_nothing(
    shopify_channel, catalog_600, sandbox, run
):
    run(shopify_channel)
    sandbox.set_fault("shopify", "products", "500", times=1)
    failed = run(shopify_channel)
    assert failed.status == "failed" and failed.finished_at is not None
    assert "internal error" in failed.error and "retried" in failed.error
    assert Product.objects.count() == 600  # a pass that did not finish removes nothing
    shopify_channel.refresh_from_db()
    assert shopify_channel.status == "connected"  # temporary: no person needed
    assert run(shopify_channel).status == "done"  # the loop's next turn works


def test_revoked_credentials_mark_the_channel_needs_attention(
    shopify_channel, sandbox, run, admin_client
):
    sandbox.set_fault("shopify", "*", "revoked")
    sync = run(shopify_channel)
    assert sync.status == "failed" and "revoked" in sync.error
    shopify_channel.refresh_from_db()
    assert shopify_channel.status == "needs_attention"
    assert shopify_channel.last_error == sync.error
    # Sync Now refuses until the connection is re-verified
    resp = post_json(admin_client, "/api/shopify/sync")
    assert resp.status_code == 409 and "Re-verify" in resp.json()["error"]["message"]
    assert ProductSync.objects.count() == 1


# --- the periodic loop -----------------------------------------------------------------------


def test_the_periodic_loop_syncs_every_connected_store(
    shopify_channel, team_b, sandbox_server, django_capture_on_commit_callbacks
):
    creds = sandbox_server.sandbox.demo["shopify"]
    other = make_channel(
        team_b,
        "shopify",
        config=shopify_config(sandbox_server, creds),
        secrets={"access_token": creds["access_token"]},
    )
    broken = make_channel(
        team_b,
        "shopify",
        name="Broken",
        config=shopify_config(sandbox_server, creds),
        secrets={"access_token": creds["access_token"]},
    )
    Channel.objects.filter(pk=broken.pk).update(status="needs_attention")
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.sync_all_shopify() == 2
    for channel in (shopify_channel, other):
        assert channel.syncs.get().status == "done"
        assert channel.products.count() == 50
    assert not broken.syncs.exists()  # waits for a person to re-verify


def test_one_store_failing_does_not_stop_the_loop(
    shopify_channel, team_b, sandbox_server, monkeypatch, django_capture_on_commit_callbacks
):
    creds = sandbox_server.sandbox.demo["shopify"]
    other = make_channel(
        team_b,
        "shopify",
        config=shopify_config(sandbox_server, creds),
        secrets={"access_token": creds["access_token"]},
    )
    original = product_sync.product_sync_start

    def flaky(*, channel):
        if channel.pk == shopify_channel.pk:
            raise RuntimeError("database hiccup")
        return original(channel=channel)

    monkeypatch.setattr(product_sync, "product_sync_start", flaky)
    with django_capture_on_commit_callbacks(execute=True):
        tasks.sync_all_shopify()
    assert other.syncs.get().status == "done"


# --- JSON endpoints --------------------------------------------------------------------------


def test_json_sync_status_and_progress(
    admin_client, shopify_channel, catalog_600, django_capture_on_commit_callbacks
):
    status = admin_client.get("/api/shopify/status").json()
    assert status["productCount"] == 0 and status["lastSyncedAt"] is None
    assert status["sync"] is None
    with django_capture_on_commit_callbacks(execute=True):
        resp = post_json(admin_client, "/api/shopify/sync")
    assert resp.status_code == 202
    body = resp.json()
    # answered before the worker ran (here: when the request's transaction committed)
    assert body == {"syncId": body["syncId"], "status": "running", "done": 0, "total": None}

    progress = admin_client.get(f"/api/shopify/sync/{body['syncId']}")
    assert progress.status_code == 200 and progress["Cache-Control"] == "no-store"
    progress = progress.json()
    assert (progress["id"], progress["status"], progress["done"]) == (body["syncId"], "done", 600)
    assert progress["productCount"] == 600 and progress["error"] is None
    assert progress["lastSyncedAt"]

    status = admin_client.get("/api/shopify/status").json()
    assert status["productCount"] == 600 and status["lastSyncedAt"]
    assert status["sync"]["id"] == body["syncId"] and status["sync"]["status"] == "done"
    assert set(status["sync"]) >= {"id", "status", "done", "total", "error"}


def test_json_sync_while_running_returns_the_running_one(admin_client, shopify_channel):
    running = ProductSync.objects.create(channel=shopify_channel, done=250, total=600)
    resp = post_json(admin_client, "/api/shopify/sync")
    assert resp.status_code == 202
    assert resp.json() == {"syncId": running.pk, "status": "running", "done": 250, "total": 600}
    status = admin_client.get("/api/shopify/status").json()
    assert status["sync"] == {
        "id": running.pk,
        "status": "running",
        "done": 250,
        "total": 600,
        "error": None,
        "startedAt": running.started_at.isoformat(),
        "finishedAt": None,
    }


def test_json_sync_without_a_store_is_a_404(admin_client):
    resp = post_json(admin_client, "/api/shopify/sync")
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"
    assert admin_client.get("/api/shopify/sync/1").status_code == 404


def test_json_sync_needs_csrf(alice, shopify_channel):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert post_json(client, "/api/shopify/sync").status_code == 403
    assert not ProductSync.objects.exists()


def test_disconnect_removes_the_synced_products(admin_client, shopify_channel, catalog_600, run):
    run(shopify_channel)
    assert Product.objects.count() == 600
    assert post_json(admin_client, "/api/shopify/disconnect").json() == {"connected": False}
    assert not Product.objects.exists() and not ProductSync.objects.exists()


def test_another_team_cannot_see_start_or_poll_a_sync(charlie, shopify_channel, run):
    sync = run(shopify_channel)
    client = Client()
    client.force_login(charlie)
    assert client.get(f"/api/shopify/sync/{sync.pk}").status_code == 404
    assert client.get("/api/shopify/status").json()["connected"] is False
    assert post_json(client, "/api/shopify/sync").status_code == 404
    assert client.post(f"{PAGE}{shopify_channel.public_id}/sync/").status_code == 404
    assert ProductSync.objects.count() == 1


def test_an_admin_of_two_teams_polls_only_the_current_one(alice, team_b, shopify_channel, run):
    from .factories import MembershipFactory

    sync = run(shopify_channel)
    MembershipFactory(team=team_b, user=alice, role="org_admin")
    client = Client()
    client.force_login(alice)
    assert client.get(f"/api/shopify/sync/{sync.pk}").status_code == 200
    client.post("/console/team/", {"team": "beta"})
    assert client.get(f"/api/shopify/sync/{sync.pk}").status_code == 404


def test_a_reviewer_gets_403_everywhere(bob, shopify_channel, run):
    sync = run(shopify_channel)
    client = Client()
    client.force_login(bob)
    assert post_json(client, "/api/shopify/sync").status_code == 403
    assert client.get(f"/api/shopify/sync/{sync.pk}").status_code == 403
    assert client.get("/api/shopify/status").status_code == 403
    assert client.post(f"{PAGE}{shopify_channel.public_id}/sync/").status_code == 403
    assert ProductSync.objects.count() == 1


def test_anonymous_gets_401(shopify_channel):
    client = Client()
    assert post_json(client, "/api/shopify/sync").status_code == 401
    assert client.get("/api/shopify/sync/1").status_code == 401


# --- the page --------------------------------------------------------------------------------


def test_sync_now_form_syncs_and_comes_back(
    admin_client, shopify_channel, catalog_600, django_capture_on_commit_callbacks
):
    page = admin_client.get(PAGE).content.decode()
    assert "Sync Now" in page and "not synced yet" in page
    assert "sync-progress.js" in page and "defer" in page
    with django_capture_on_commit_callbacks(execute=True):
        resp = admin_client.post(f"{PAGE}{shopify_channel.public_id}/sync/")
    assert resp.status_code == 302 and resp["Location"] == f"{PAGE}?tab=shopify"
    page = admin_client.get(resp["Location"]).content.decode()
    assert "Syncing products from Shopify…" in page  # queued; a worker ran it after the commit
    assert "<strong data-sync-count>600</strong> products" in page
    assert "last synced" in page
    assert 'data-sync-status="done"' in page


@pytest.mark.django_db(transaction=True)
def test_without_a_broker_sync_now_runs_inside_the_request(admin_client, shopify_channel):
    """The demo's set-up (eager Celery, no surrounding transaction): the run is over by the
    time the page comes back."""
    resp = admin_client.post(f"{PAGE}{shopify_channel.public_id}/sync/", follow=True)
    page = resp.content.decode()
    assert "Shopify: 50 products synced." in page
    assert "<strong data-sync-count>50</strong> products" in page


def test_the_page_shows_a_running_sync_as_a_progress_bar(admin_client, shopify_channel):
    sync = ProductSync.objects.create(channel=shopify_channel, done=1250, total=10050)
    page = admin_client.get(PAGE).content.decode()
    assert 'data-sync-status="running"' in page
    assert f'data-sync-url="/api/shopify/sync/{sync.pk}"' in page
    assert 'max="10050" value="1250"' in page
    assert "Syncing products… 1,250 of 10,050" in page
    assert 'aria-live="polite"' in page


def test_the_page_shows_why_the_last_sync_failed(admin_client, shopify_channel, sandbox, run):
    sandbox.set_fault("shopify", "products", "500", times=1)
    run(shopify_channel)
    page = admin_client.get(PAGE).content.decode()
    assert "The last sync failed: Shopify had an internal error" in page


def test_sync_now_of_a_channel_needing_attention_says_so(admin_client, shopify_channel):
    Channel.objects.filter(pk=shopify_channel.pk).update(status="needs_attention")
    resp = admin_client.post(f"{PAGE}{shopify_channel.public_id}/sync/", follow=True)
    assert "re-verify the connection before syncing" in resp.content.decode()
    assert "Sync Now" not in resp.content.decode()
    assert not ProductSync.objects.exists()


def test_sync_now_is_only_for_shopify(admin_client, amazon_channel):
    assert admin_client.post(f"{PAGE}{amazon_channel.public_id}/sync/").status_code == 404
    page = admin_client.get(f"{PAGE}?tab=amazon").content.decode()
    assert "Sync Now" not in page and "sync-progress.js" not in page
