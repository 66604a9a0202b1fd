"""Integrator keys: created (the secret shown once), revoked, rotated. Only hashes are kept."""

import hashlib
import secrets

from django.db import transaction
from django.utils import timezone

from . import errors
from .models import ApiKey, Team

KEY_PREFIX = "fl_live_"
SCOPES = (
    "members:read",
    "points:read",
    "points:write",
    "points:adjust",
    "coupons:read",
    "coupons:redeem",
    "stores:read",
)
READ_SCOPES = ("members:read", "points:read", "coupons:read", "stores:read")
PRESETS = {
    "read": READ_SCOPES,
    "write": READ_SCOPES + ("points:write", "coupons:redeem"),
}


def hash_key(plaintext: str) -> str:
    # Keys are 190+ bits of randomness, so a fast hash is enough (no dictionary to guess from).
    return hashlib.sha256(plaintext.encode()).hexdigest()


def _scopes_for(preset: str | None, scopes) -> list[str]:
    if preset is not None:
        if preset not in PRESETS:
            raise errors.InvalidInput(f"Preset must be one of {', '.join(PRESETS)}.")
        scopes = PRESETS[preset]
    unknown = set(scopes or ()) - set(SCOPES)
    if unknown or not scopes:
        raise errors.InvalidInput(f"Scopes must be chosen from {', '.join(SCOPES)}.")
    return [s for s in SCOPES if s in scopes]


def api_key_create(
    *,
    team: Team,
    name: str,
    preset: str | None = None,
    scopes=None,
    created_by=None,
    rate_limit: int = 600,
    rotated_from: ApiKey | None = None,
) -> tuple[ApiKey, str]:
    """Returns the key and its plaintext, which is never stored and never shown again."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise errors.InvalidInput("Give the key a name of 1 to 100 characters.")
    if not isinstance(rate_limit, int) or rate_limit < 1:
        raise errors.InvalidInput("The rate limit is a whole number of requests per minute.")
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        team=team,
        name=name,
        prefix=plaintext[:12],
        key_hash=hash_key(plaintext),
        scopes=_scopes_for(preset, scopes),
        created_by=created_by,
        rate_limit=rate_limit,
        rotated_from=rotated_from,
    )
    return key, plaintext


def api_key_revoke(*, key: ApiKey) -> ApiKey:
    ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    key.refresh_from_db()
    return key


@transaction.atomic
def api_key_rotate(*, key: ApiKey, created_by=None) -> tuple[ApiKey, str]:
    """A new key with the same name, scopes and limit; the old one works until revoked."""
    if key.revoked_at is not None:
        raise errors.IllegalTransition("A revoked key cannot be rotated; create a new one.")
    return api_key_create(
        team=key.team,
        name=key.name,
        scopes=key.scopes,
        created_by=created_by,
        rate_limit=key.rate_limit,
        rotated_from=key,
    )
