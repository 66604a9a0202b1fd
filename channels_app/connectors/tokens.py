"""Short-lived access tokens a connector obtains itself, refreshed at most once at a time.

The race this prevents: ten jobs of one channel find the access token expired at the same time.
Each refreshing on its own would waste nine refreshes — and with TikTok, whose refresh token
rotates on every use, the second refresh presents a token the first one just invalidated, and
the channel is locked out until a person authorizes again. So the refresh runs under the
channel's row lock: the first job refreshes and persists the new tokens before releasing it;
the others, once they get the lock, re-read the row, find a fresh token and use it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from channels_app.models import Channel

ACCESS = "runtime_access_token"


@dataclass(frozen=True)
class TokenGrant:
    access_token: str
    expires_at: datetime
    refresh_token: str | None = None  # the rotated one, when the platform rotates
    config: dict = field(default_factory=dict)  # public facts to keep (e.g. refresh expiry)


def usable_token(channel: Channel, *, margin: timedelta, rejected: str | None = None) -> str | None:
    """The channel's access token if it stays valid for `margin` and was not just rejected."""
    access = channel.secret(ACCESS) if ACCESS in channel.sealed_secrets else None
    expires = channel.token_expires_at
    if not access or access == rejected or expires is None:
        return None
    return access if expires - margin > timezone.now() else None


def ensure_token(
    channel: Channel,
    *,
    obtain: Callable[[Channel], TokenGrant],
    margin: timedelta,
    rejected: str | None = None,
    lineage: str,
    prefer_memory: bool = False,
) -> str:
    """Return a usable access token, refreshing it single-flight under the channel's row lock.

    `obtain(source)` calls the platform with `source`'s credentials and may raise a
    ConnectorError. `lineage` names the secret that identifies the credentials (the refresh
    token, or the client secret): when the row holds other ones than the object in hand, the
    row wins — another job rotated them since this one loaded the channel — unless
    `prefer_memory` (Save & Verify of credentials not saved yet), which then always obtains a
    token with the credentials in hand."""
    if channel.pk is None:  # not saved yet: nobody else can be using it
        grant = obtain(channel)
        _apply(channel, grant)
        return grant.access_token
    with transaction.atomic():
        row = Channel.objects.select_for_update().get(pk=channel.pk)
        same = row.sealed_secrets.get(lineage) == channel.sealed_secrets.get(lineage)
        source = channel if (prefer_memory and not same) else row
        # New credentials in hand: the stored access token belongs to the old ones, so it
        # proves nothing about them — obtain a token with the new ones.
        access = None if source is channel else usable_token(row, margin=margin, rejected=rejected)
        if access is None:
            grant = obtain(source)  # the HTTP call runs under the lock, on purpose
            _apply(source, grant)
            access = grant.access_token
            names = [ACCESS, "refresh_token"] if grant.refresh_token else [ACCESS]
            Channel.objects.filter(pk=row.pk).update(
                sealed_secrets={**row.sealed_secrets, **_pick(source.sealed_secrets, names)},
                secret_hints={**row.secret_hints, **_pick(source.secret_hints, names)},
                token_expires_at=grant.expires_at,
                config={**row.config, **grant.config},
                updated_at=timezone.now(),
            )
        if source is not channel:
            # The caller's object may be saved later: give it the current tokens so that save
            # cannot write back the ones just rotated away.
            names = [ACCESS, "refresh_token"]
            channel.sealed_secrets.update(_pick(source.sealed_secrets, names))
            channel.secret_hints.update(_pick(source.secret_hints, names))
            channel.token_expires_at = source.token_expires_at
            for key in source.config.keys() & {"refresh_token_expires_at"}:
                channel.config[key] = source.config[key]
    return access


def _apply(channel: Channel, grant: TokenGrant) -> None:
    channel.set_secret(ACCESS, grant.access_token)
    if grant.refresh_token:
        channel.set_secret("refresh_token", grant.refresh_token)
    channel.token_expires_at = grant.expires_at
    channel.config.update(grant.config)


def _pick(values: dict, names: list[str]) -> dict:
    return {name: values[name] for name in names if name in values}
