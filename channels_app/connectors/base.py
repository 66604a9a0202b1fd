"""The connector contract: what every platform adapter offers and the only shapes it returns.

Raw platform payloads (with buyer PII) never leave the adapter function that fetched them:
an adapter returns an OrderProjection or a RefundEvent, whose fields are non-PII by
construction, plus the result of comparing a buyer hint in memory."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar, Protocol

if TYPE_CHECKING:
    from channels_app.models import Channel


class ConnectorError(Exception):
    """A platform fault, in words a person can act on.

    ``permanent`` faults (revoked or wrong credentials) put the channel in needs_attention;
    temporary ones (429, 5xx, timeouts) are retried with back-off after ``retry_after`` s.
    """

    permanent = False

    def __init__(self, message: str, *, retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class TemporaryError(ConnectorError):
    permanent = False


class RateLimited(TemporaryError):
    pass


class PermanentError(ConnectorError):
    permanent = True


class PageExpired(ConnectorError):
    """The platform refused a pagination token (expired, or not from this search).

    Not a fault of the credentials: restart the same time window from its first page."""

    permanent = False


class OrderNotFound(ConnectorError):
    """These credentials cannot fetch that order: unknown, or another seller's."""

    permanent = True


class BuyerMatch(StrEnum):
    MATCH = "match"
    NO_MATCH = "no_match"
    NOT_GIVEN = "not_given"
    UNAVAILABLE = "unavailable"  # a hint was given, but the platform returned nothing to compare


@dataclass(frozen=True)
class BuyerHint:
    """What a member typed about the order, compared in memory with the buyer's data."""

    postal_code: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class OrderProjection:
    """The non-PII shape of an order: the only order data that may be stored."""

    order_id: str
    channel_kind: str
    status: str  # the platform's own status word
    purchased_at: datetime | None
    updated_at: datetime | None
    total: Decimal | None
    currency: str
    item_count: int
    marketplace: str = ""
    refunded_total: Decimal = Decimal("0")
    cancelled: bool = False
    delivered: bool = False
    buyer_match: BuyerMatch = BuyerMatch.NOT_GIVEN
    # What the caller's resolver returned for the buyer (e.g. a member's public id), never the
    # PII it was resolved from. Empty when no resolver was given or it found nobody.
    buyer_ref: str = ""


@dataclass(frozen=True)
class RefundEvent:
    """One refund the platform posted: money given back on an order (no buyer data)."""

    order_id: str
    refund_id: str  # stable across reads of the same refund
    amount: Decimal  # positive, in `currency`
    currency: str
    posted_at: datetime | None


@dataclass(frozen=True)
class ChangePage:
    """One page of a time-window search; next_token is "" on the last page."""

    items: tuple  # OrderProjection or RefundEvent
    next_token: str = ""


@dataclass(frozen=True)
class ConnectionCheck:
    """What Save & Verify saw: a summary for people, and public facts to keep in config."""

    summary: str
    details: dict = field(default_factory=dict)
    discovered_config: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ConfigField:
    name: str
    label: str
    required: bool = True
    help: str = ""
    default: str = ""


def _squash(value: str) -> str:
    return "".join(value.split()).replace("-", "").casefold()


def compare_buyer(
    hint: BuyerHint | None, *, postal_code: str | None = None, email: str | None = None
) -> BuyerMatch:
    """Compare what the member typed with the buyer's data, in memory; only the verdict leaves.

    Postal codes compare without case, spaces or hyphens ("m5v 2t6" == "M5V2T6"); e-mails
    without case. Every hint field the platform also returned must agree."""
    given = {
        name: value.strip()
        for name, value in (
            ("postal_code", hint and hint.postal_code),
            ("email", hint and hint.email),
        )
        if value and value.strip()
    }
    if not given:
        return BuyerMatch.NOT_GIVEN
    known = {"postal_code": postal_code, "email": email}
    compared = [name for name in given if known[name]]
    if not compared:
        return BuyerMatch.UNAVAILABLE
    for name in compared:
        left, right = given[name], known[name] or ""
        same = (
            _squash(left) == _squash(right)
            if name == "postal_code"
            else left.casefold() == right.strip().casefold()
        )
        if not same:
            return BuyerMatch.NO_MATCH
    return BuyerMatch.MATCH


class Connector(Protocol):
    kind: ClassVar[str]
    config_fields: ClassVar[tuple[ConfigField, ...]]
    secret_fields: ClassVar[tuple[ConfigField, ...]]
    # What an order number of this platform looks like (the portal checks it before a claim).
    order_number_pattern: ClassVar[str]

    def __init__(self, channel: Channel): ...

    def check(self) -> ConnectionCheck: ...

    def fetch_order(
        self, order_number: str, *, match: BuyerHint | None = None
    ) -> OrderProjection: ...

    def changed_orders(self, since: datetime) -> Iterator[OrderProjection]: ...

    # Incremental, resumable window searches (the claw-back job). One call is one platform
    # page over [since, until); pass the returned next_token back, with the same window, to
    # continue. A refused token raises PageExpired: start the window again from "".
    def order_changes(
        self, *, since: datetime, until: datetime, page_token: str = ""
    ) -> ChangePage: ...

    def refund_changes(
        self, *, since: datetime, until: datetime, page_token: str = ""
    ) -> ChangePage: ...
