"""Shopify product sync: Sync Now and the periodic loop pull the store's catalog into Product.

One ProductSync row per run is what the Online Shop tab polls for its progress bar. At most one
run per channel is `running` (a partial unique index): a second Sync Now inserts, collides with
that index and joins the run already going instead of starting a twin. The task takes the run's
id only and re-reads everything else, so nothing secret or stale travels through the broker."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, OuterRef, Subquery
from django.utils import timezone

from . import services
from .connectors.base import ConnectorError
from .connectors.shopify import ShopifyConnector
from .models import Channel, Product, ProductSync, SyncStatus

log = logging.getLogger(__name__)

PAGE_SIZE = 250  # the most Shopify returns per page
# A run whose worker died (deploy, OOM) stays `running` for ever and would make every later
# Sync Now join it. Past STALE_AFTER it is failed and a new run starts — unless it wrote a page
# within QUIET_AFTER: a live run writes one at least every minute or so (a throttle wait is
# capped at 20 s, a request at its timeout), and a big catalog on a slow bucket legitimately
# takes longer than 30 minutes. Should a failed-as-stale worker still be alive after all, it
# notices at its next page (its row is no longer running) and stops.
STALE_AFTER = timedelta(minutes=30)
QUIET_AFTER = timedelta(minutes=5)
STALE_MESSAGE = "The sync stopped reporting progress (its worker may have restarted)."
UNEXPECTED_MESSAGE = "The sync stopped on an unexpected error; it will be retried."
NOT_QUEUED_MESSAGE = "The sync could not be queued; try Sync Now again in a few minutes."
UPSERT_FIELDS = ["title", "handle", "status", "updated_at_shop", "synced_at"]


# --- starting (and joining) a run ------------------------------------------------------------


def product_sync_start(*, channel: Channel) -> ProductSync:
    """Start a product sync of `channel`, or join the one already running.

    The task is queued when the surrounding transaction commits, so a worker never looks for
    a row it cannot see yet (and a rolled-back request queues nothing)."""
    fail_stale_syncs(channel=channel)
    for _ in range(3):
        try:
            with transaction.atomic():
                sync = ProductSync.objects.create(channel=channel)
        except IntegrityError:
            running = ProductSync.objects.filter(channel=channel, status=SyncStatus.RUNNING).first()
            if running is not None:
                return running
            continue  # it finished between our insert and our look: insert again
        transaction.on_commit(lambda sync_id=sync.pk: _enqueue(sync_id))
        return sync
    raise RuntimeError(f"Could not start or join a product sync of {channel.public_id}.")


def _enqueue(sync_id: int) -> None:
    # Imported here: tasks.py imports this module for the task bodies.
    from .tasks import sync_products

    try:
        sync_products.delay(sync_id)
    except Exception:
        # A broker that is down must not leave a `running` row that every Sync Now joins.
        # (Without a broker the task runs right here and records its own outcome first.)
        log.exception("product sync %s could not be queued", sync_id)
        _fail(sync_id, NOT_QUEUED_MESSAGE)


def fail_stale_syncs(*, channel: Channel | None = None) -> int:
    now = timezone.now()
    # Product.synced_at moves with every page written: the run's heartbeat.
    wrote_lately = Product.objects.filter(
        channel=OuterRef("channel"), synced_at__gte=now - QUIET_AFTER
    )
    stale = ProductSync.objects.filter(
        ~Exists(wrote_lately), status=SyncStatus.RUNNING, started_at__lt=now - STALE_AFTER
    )
    if channel is not None:
        stale = stale.filter(channel=channel)
    return stale.update(status=SyncStatus.FAILED, error=STALE_MESSAGE, finished_at=now)


# --- the run itself (the sync_products task) -------------------------------------------------


class _Superseded(Exception):
    """The run's row is no longer `running`: failed as stale, or gone with its channel."""


def run_sync(sync_id: int) -> str:
    """Page through the store's catalog, upserting a page at a time, then remove what the
    store no longer has. Returns the run's final status (for logs and tests)."""
    sync = ProductSync.objects.select_related("channel").filter(pk=sync_id).first()
    if sync is None or sync.status != SyncStatus.RUNNING:
        return sync.status if sync else "gone"  # a retried delivery of a finished run
    channel = sync.channel
    try:
        _pull_catalog(sync_id, channel)
    except _Superseded:
        return "superseded"
    except ConnectorError as exc:
        log.info("product sync %s of %s failed: %s", sync_id, channel.public_id, type(exc).__name__)
        _fail(sync_id, exc.message)
        if exc.permanent:  # revoked or wrong credentials: a person has to act
            services.channel_mark_failed(channel=channel, message=exc.message, permanent=True)
        return SyncStatus.FAILED
    except IntegrityError:
        # The channel was disconnected mid-run: its products cannot be written any more.
        if not ProductSync.objects.filter(pk=sync_id).exists():
            return "superseded"
        _fail(sync_id, UNEXPECTED_MESSAGE)
        raise
    except Exception:
        _fail(sync_id, UNEXPECTED_MESSAGE)
        raise
    return SyncStatus.DONE


def _pull_catalog(sync_id: int, channel: Channel) -> None:
    connector = ShopifyConnector(channel)
    total = connector.products_count()
    if total is not None:
        _progress(sync_id, total=total)
    page_size = _page_size(connector)
    seen: set[str] = set()
    page: dict[str, Product] = {}
    for node in connector.products(page_size=page_size):
        product = _product(channel, node)
        if product is None:
            continue
        page[product.gid] = product  # one gid once per insert, or Postgres refuses the upsert
        if len(page) >= page_size:
            _write_page(sync_id, page, seen, total)
            page = {}
    if page:
        _write_page(sync_id, page, seen, total)
    _finish(sync_id, channel, seen)


def _page_size(connector: ShopifyConnector) -> int:
    """A page costs 2 + its size in query points; a store whose bucket holds fewer points
    than that (the count query told us) could never pay for a full page."""
    maximum = (connector.throttle_status or {}).get("maximumAvailable")
    if not maximum:
        return PAGE_SIZE
    return max(1, min(PAGE_SIZE, int(maximum) - 2))


def _product(channel: Channel, node: dict) -> Product | None:
    gid = str(node.get("id") or "")
    if not gid:
        return None
    return Product(
        channel=channel,
        gid=gid[:100],
        title=str(node.get("title") or "")[:300],
        handle=str(node.get("handle") or "")[:300],
        status=str(node.get("status") or "").lower()[:20],
        updated_at_shop=_iso(node.get("updatedAt")),
    )


def _write_page(sync_id: int, page: dict[str, Product], seen: set[str], total: int | None):
    Product.objects.bulk_create(
        page.values(),
        update_conflicts=True,
        unique_fields=["channel", "gid"],
        update_fields=UPSERT_FIELDS,
    )
    seen.update(page)
    # The count may grow past the figure asked up front (products added meanwhile).
    _progress(sync_id, done=len(seen), total=max(total, len(seen)) if total else None)


def _progress(sync_id: int, **fields) -> None:
    fields = {k: v for k, v in fields.items() if v is not None}
    if not ProductSync.objects.filter(pk=sync_id, status=SyncStatus.RUNNING).update(**fields):
        raise _Superseded


def _finish(sync_id: int, channel: Channel, seen: set[str]) -> None:
    """Only a complete pass may delete: a failed one stops before it, so a fault halfway
    through never empties the catalog."""
    with transaction.atomic():
        # Locked so a stale-marking in between cannot be overwritten by "done".
        row = (
            ProductSync.objects.select_for_update()
            .filter(pk=sync_id, status=SyncStatus.RUNNING)
            .first()
        )
        if row is None:
            raise _Superseded
        gone = [
            gid
            for gid in Product.objects.filter(channel=channel).values_list("gid", flat=True)
            if gid not in seen
        ]
        for start in range(0, len(gone), 1000):
            Product.objects.filter(channel=channel, gid__in=gone[start : start + 1000]).delete()
        now = timezone.now()
        row.status, row.finished_at = SyncStatus.DONE, now
        row.done = row.total = len(seen)  # the store's count now, whatever was asked up front
        row.save(update_fields=["status", "done", "total", "finished_at"])
        Channel.objects.filter(pk=channel.pk).update(last_synced_at=now)


def _fail(sync_id: int, message: str) -> None:
    ProductSync.objects.filter(pk=sync_id, status=SyncStatus.RUNNING).update(
        status=SyncStatus.FAILED, error=message[:500], finished_at=timezone.now()
    )


def _iso(value) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None
    except ValueError:
        return None


# --- what the console shows ------------------------------------------------------------------


@dataclass(frozen=True)
class SyncState:
    product_count: int
    last_synced_at: datetime | None
    sync: ProductSync | None  # the latest run, if any


def sync_state(channel: Channel) -> SyncState:
    return SyncState(
        product_count=channel.products.count(),
        last_synced_at=channel.last_synced_at,
        sync=channel.syncs.order_by("-started_at", "-pk").first(),
    )


def with_sync_state(channels) -> list[Channel]:
    """The channels, each with `.product_count` and `.latest_sync` for the page (two queries)."""
    latest = ProductSync.objects.filter(channel=OuterRef("pk")).order_by("-started_at", "-pk")
    channels = list(
        channels.annotate(
            product_count=Count("products"), latest_sync_id=Subquery(latest.values("pk")[:1])
        )
    )
    syncs = ProductSync.objects.in_bulk([c.latest_sync_id for c in channels if c.latest_sync_id])
    for channel in channels:
        channel.latest_sync = syncs.get(channel.latest_sync_id)
    return channels


def sync_json(sync: ProductSync | None) -> dict | None:
    if sync is None:
        return None
    return {
        "id": sync.pk,
        "status": sync.status,
        "done": sync.done,
        "total": sync.total,
        "error": sync.error or None,
        "startedAt": sync.started_at.isoformat() if sync.started_at else None,
        "finishedAt": sync.finished_at.isoformat() if sync.finished_at else None,
    }
