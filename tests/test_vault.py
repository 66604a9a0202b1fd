"""The vault: AES-256-GCM with a key ring; rotation; tampering refused; start-up checks."""

import base64
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection

from channels_app import vault
from channels_app.models import Channel

ROOT = Path(__file__).resolve().parent.parent
OLD_RING = "k1:" + base64.b64encode(b"1" * 32).decode()
NEW_RING = "k9:" + base64.b64encode(b"9" * 32).decode() + "," + OLD_RING


def test_seal_and_open_round_trip():
    sealed = vault.seal("shpat_sentinel", context="ch_x:access_token")
    assert "shpat_sentinel" not in sealed and sealed.startswith("v1:k2:")
    assert vault.open_sealed(sealed, context="ch_x:access_token") == "shpat_sentinel"


def test_sealing_twice_gives_different_ciphertexts():
    assert vault.seal("same", context="c") != vault.seal("same", context="c")


def test_tampered_or_moved_ciphertext_is_refused():
    sealed = vault.seal("secret-value", context="ch_a:client_secret")
    version, kid, nonce, body = sealed.split(":")
    raw = bytearray(base64.b64decode(body))
    raw[0] ^= 1
    tampered = ":".join([version, kid, nonce, base64.b64encode(bytes(raw)).decode()])
    with pytest.raises(vault.VaultError, match="integrity"):
        vault.open_sealed(tampered, context="ch_a:client_secret")
    with pytest.raises(vault.VaultError, match="integrity"):  # copied onto another channel
        vault.open_sealed(sealed, context="ch_b:client_secret")
    with pytest.raises(vault.VaultError, match="malformed"):
        vault.open_sealed("v1:k2:garbage", context="ch_a:client_secret")


@pytest.mark.parametrize(
    "ring, message",
    [
        ("", "missing"),
        ("nocolon", "malformed"),
        ("k1:not-base64!!", "not base64"),
        ("k1:" + base64.b64encode(b"short").decode(), "32 bytes"),
        (OLD_RING + "," + OLD_RING, "twice"),
    ],
)
def test_malformed_rings_are_refused_with_a_clear_message(ring, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        vault.parse_ring(ring)


def test_start_up_stops_without_a_key_ring():
    env = {k: v for k, v in os.environ.items() if k != "FLASH_VAULT_KEYS"}
    env.update(DJANGO_SETTINGS_MODULE="flash.settings", DEBUG="1")
    proc = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode != 0 and "FLASH_VAULT_KEYS is missing" in proc.stderr


@pytest.mark.django_db
def test_rotation_re_encrypts_under_the_newest_key(settings, team_a):
    settings.FLASH_VAULT_KEYS = OLD_RING
    channel = Channel(team=team_a, kind="amazon", name="EU", config={})
    channel.set_secret("refresh_token", "Atzr|old-key-sentinel")
    channel.save()
    assert vault.key_id_of(channel.sealed_secrets["refresh_token"]) == "k1"

    settings.FLASH_VAULT_KEYS = NEW_RING  # the new key first, the old one still in the ring
    channel.refresh_from_db()
    assert channel.secret("refresh_token") == "Atzr|old-key-sentinel"  # old data still reads
    out = io.StringIO()
    call_command("rotate_vault_key", stdout=out)
    assert "1 secret" in out.getvalue()
    channel.refresh_from_db()
    assert vault.key_id_of(channel.sealed_secrets["refresh_token"]) == "k9"

    settings.FLASH_VAULT_KEYS = NEW_RING.split(",")[0]  # the old key retired
    assert channel.secret("refresh_token") == "Atzr|old-key-sentinel"
    with connection.cursor() as cur:
        cur.execute("SELECT sealed_secrets::text FROM channels_app_channel")
        assert "old-key-sentinel" not in cur.fetchone()[0]
