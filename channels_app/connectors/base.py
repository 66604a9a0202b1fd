"""The connector contract: what every platform adapter offers and the only shapes it returns.

Raw platform payloads (with buyer PII) never leave the adapter function that fetched them:
an adapter returns an OrderProjection, whose fields are non-PII by construction, plus the
result of comparing a buyer hint in memory."""

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


class OrderNotFound(ConnectorError):
    """These credentials cannot fetch that order: unknown, or another seller's."""

    permanent = True


class BuyerMatch(StrEnum):
    MATCH = "match"
    NO_MATCH = "no_match"
    NOT_GIVEN = "not_given"


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


class Connector(Protocol):
    kind: ClassVar[str]
    config_fields: ClassVar[tuple[ConfigField, ...]]
    secret_fields: ClassVar[tuple[ConfigField, ...]]

    def __init__(self, channel: Channel): ...

    def check(self) -> ConnectionCheck: ...

    def fetch_order(
        self, order_number: str, *, match: BuyerHint | None = None
    ) -> OrderProjection: ...

    def changed_orders(self, since: datetime) -> Iterator[OrderProjection]: ...
