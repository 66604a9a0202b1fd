"""The secret vault: AES-256-GCM with a key ring, so keys can rotate.

`FLASH_VAULT_KEYS` is a comma-separated ring of `key_id:base64(32 bytes)`, newest first. New
secrets are sealed with the newest key; any key still in the ring opens what it sealed. A sealed
value is the text `v1:<key id>:<base64 nonce>:<base64 ciphertext+tag>`, and the ciphertext is
bound to where it lives (associated data), so it cannot be copied onto another channel or field.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
VERSION = "v1"


class VaultError(Exception):
    """A sealed value could not be opened (unknown key, tampered, or malformed)."""


@dataclass(frozen=True)
class KeyRing:
    keys: tuple[tuple[str, bytes], ...]  # newest first

    @property
    def current_id(self) -> str:
        return self.keys[0][0]

    def get(self, key_id: str) -> bytes:
        for kid, key in self.keys:
            if kid == key_id:
                return key
        raise VaultError(f"Secret was sealed with key '{key_id}', which is not in the ring.")


def parse_ring(value: str) -> KeyRing:
    """Parse FLASH_VAULT_KEYS; raises ImproperlyConfigured with a message saying what to fix."""
    hint = (
        "Set FLASH_VAULT_KEYS to 'key_id:base64_32_bytes[,older_id:...]', newest first; "
        'make one with: python -c "import os,base64;'
        "print('k1:'+base64.b64encode(os.urandom(32)).decode())\""
    )
    if not value or not value.strip():
        raise ImproperlyConfigured(f"FLASH_VAULT_KEYS is missing. {hint}")
    keys, seen = [], set()
    for part in value.split(","):
        kid, sep, material = part.strip().partition(":")
        if not sep or not _KEY_ID.match(kid):
            raise ImproperlyConfigured(f"FLASH_VAULT_KEYS has a malformed entry. {hint}")
        if kid in seen:
            raise ImproperlyConfigured(f"FLASH_VAULT_KEYS names key '{kid}' twice.")
        try:
            key = base64.b64decode(material, validate=True)
        except (binascii.Error, ValueError):
            raise ImproperlyConfigured(
                f"FLASH_VAULT_KEYS key '{kid}' is not base64. {hint}"
            ) from None
        if len(key) != 32:
            raise ImproperlyConfigured(
                f"FLASH_VAULT_KEYS key '{kid}' must be 32 bytes (AES-256), not {len(key)}."
            )
        seen.add(kid)
        keys.append((kid, key))
    return KeyRing(tuple(keys))


@lru_cache(maxsize=1)
def _ring_for(value: str) -> KeyRing:
    return parse_ring(value)


def ring() -> KeyRing:
    return _ring_for(settings.FLASH_VAULT_KEYS)


def seal(plaintext: str, *, context: str) -> str:
    r = ring()
    nonce = os.urandom(12)
    sealed = AESGCM(r.get(r.current_id)).encrypt(nonce, plaintext.encode(), context.encode())
    return ":".join([VERSION, r.current_id, _b64(nonce), _b64(sealed)])


def open_sealed(value: str, *, context: str) -> str:
    try:
        version, kid, nonce, sealed = value.split(":")
        if version != VERSION:
            raise ValueError(version)
        plain = AESGCM(ring().get(kid)).decrypt(
            base64.b64decode(nonce), base64.b64decode(sealed), context.encode()
        )
    except (ValueError, binascii.Error):
        raise VaultError("A stored secret is malformed.") from None
    except InvalidTag:
        raise VaultError(
            "A stored secret failed its integrity check (tampered or moved)."
        ) from None
    return plain.decode()


def key_id_of(value: str) -> str:
    return value.split(":")[1]


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()
