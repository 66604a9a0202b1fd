"""Sync Now in a real browser: a 10,000-product store, the progress bar moving while the run
goes on, and the new product count at the end."""

import threading
import time

import pytest
from django.db import connections
from playwright.sync_api import expect

from channels_app import product_sync, tasks
from channels_app.models import Product, ProductSync

from .browser_fixtures import ARTIFACTS, staff_sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PAGE = "/console/settings/online-shop/"


@pytest.fixture
def background_worker(transactional_db, monkeypatch):
    """Stand-in for a Celery worker. Without a broker the task runs eagerly inside the Sync Now
    request, and the page would only come back once the run is over; here the queued run goes
    to a thread instead, so the page can poll it while it runs. The production path
    (on_commit → sync_products.delay(id)) is unchanged up to the `delay` call."""
    threads: list[threading.Thread] = []

    def delay(sync_id):
        def work():
            try:
                product_sync.run_sync(sync_id)
            finally:
                connections.close_all()  # this thread's own connections

        thread = threading.Thread(target=work, name=f"product-sync-{sync_id}", daemon=True)
        threads.append(thread)
        thread.start()

    monkeypatch.setattr(tasks.sync_products, "delay", delay)
    yield threads
    # Before the database is flushed: a run still writing would race the teardown.
    for thread in threads:
        thread.join(timeout=120)


def test_sync_now_shows_the_progress_of_a_10000_product_store(
    page, alice, shopify_channel, sandbox, demo, background_worker
):
    domain = demo["shopify"]["shop_domain"]
    for n in range(10_000):
        sandbox.shopify.add_product(domain, f"Catalog item {n:05}")
    total = len(sandbox.shopify.shops[domain].products)  # the demo's 50 and these
    # Shopify's standard pace would take ~100 s; this bucket pays ~4 pages a second, slow enough
    # to watch and still throttled.
    sandbox.set_shopify_bucket(domain, maximum=1000, restore_rate=1000)

    staff_sign_in(page, "alice@alpha.test", next_url=f"{PAGE}?tab=shopify")
    card = page.locator(f"#{shopify_channel.public_id}")
    expect(card.get_by_text("not synced yet")).to_be_visible()
    card.get_by_role("button", name="Sync Now").click()
    expect(page.get_by_text("Syncing products from Shopify…")).to_be_visible()

    bar = card.get_by_role("progressbar")
    expect(bar).to_be_visible()
    seen: list[int] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        value, maximum, determinate = bar.evaluate("b => [b.value, b.max, b.hasAttribute('value')]")
        if determinate and maximum == total and 0 < value < total and value not in seen:
            seen.append(int(value))
            if len(seen) == 2:
                page.screenshot(path=ARTIFACTS / "online-shop-sync-running.png", full_page=True)
        if card.locator("[data-sync-when]").inner_text() == "synced just now":
            break
        page.wait_for_timeout(100)
    assert len(seen) >= 2, f"the bar did not move through the run: {seen}"
    assert seen == sorted(seen)  # it only moves forward

    expect(card.locator("[data-sync-when]")).to_have_text("synced just now")
    expect(card.locator("[data-sync-count]")).to_have_text(f"{total:,}")
    expect(card.locator("[data-sync-label]")).to_have_text(f"Synced {total:,} products.")
    assert bar.evaluate("b => [b.value, b.max]") == [total, total]
    expect(card.get_by_role("status")).to_have_text(f"Synced {total:,} products.")
    page.screenshot(path=ARTIFACTS / "online-shop-sync.png", full_page=True)

    sync = ProductSync.objects.get()
    assert (sync.status, sync.done, sync.total) == ("done", total, total)
    assert Product.objects.filter(channel=shopify_channel).count() == total
