"""Re-seal every vault-sealed value under the newest key of FLASH_VAULT_KEYS.

Sealed values live in three places: channel credentials (channels_app), outbound webhook
signing secrets (events) and the postal code of a claim still waiting for verification
(claims). All three are re-sealed here — a key dropped from the ring while any of them still
needs it makes that value unreadable for good. The procedure is in docs/operations.md:
new key first in the ring everywhere → this → ``--check`` → drop the old key.
"""

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from channels_app import vault
from channels_app.models import Channel


def _stale(value: str, current: str) -> bool:
    return bool(value) and vault.key_id_of(value) != current


class Command(BaseCommand):
    help = (
        "Re-encrypt every sealed secret (channel credentials, webhook signing secrets, postal "
        "codes of claims being verified) under the newest key of FLASH_VAULT_KEYS. Put the new "
        "key first in the ring, run this, check with --check, then drop the old key."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--check",
            action="store_true",
            help="Change nothing; fail if any value is still sealed under an older key.",
        )

    def handle(self, *args, check: bool, **options):
        current = vault.ring().current_id
        if check:
            left = {name: len(ids) for name, ids in self._stale_ids(current).items() if ids}
            if left:
                detail = ", ".join(f"{n} {name}" for name, n in left.items())
                raise CommandError(
                    f"Still sealed under an older key than '{current}': {detail}. "
                    "Run manage.py rotate_vault_key (with every process on the new ring)."
                )
            self.stdout.write(f"Every sealed value is under key '{current}'.")
            return
        counts = {
            "channel secret(s)": self._channels(current),
            "webhook signing secret(s)": self._endpoints(current),
            "claim postal code(s)": self._claims(current),
        }
        total = sum(counts.values())
        self.stdout.write(f"{total} secret(s) re-encrypted under key '{current}'.")
        for name, n in counts.items():
            self.stdout.write(f"  {n} {name}")

    # --- where sealed values live ---

    def _stale_ids(self, current: str) -> dict[str, list[int]]:
        return {
            "channel secret(s)": self._stale_channels(current),
            "webhook signing secret(s)": self._stale_endpoints(current),
            "claim postal code(s)": self._stale_claims(current),
        }

    def _stale_channels(self, current: str) -> list[int]:
        return [
            pk
            for pk, sealed in Channel.objects.values_list("pk", "sealed_secrets")
            if any(_stale(v, current) for v in sealed.values())
        ]

    def _stale_endpoints(self, current: str) -> list[int]:
        if (endpoint := self._model("events", "WebhookEndpoint")) is None:
            return []
        rows = endpoint.objects.values_list("pk", "sealed_secret")
        return [pk for pk, value in rows if _stale(value, current)]

    def _stale_claims(self, current: str) -> list[int]:
        if (claim := self._model("claims", "Claim")) is None:
            return []
        rows = claim.objects.exclude(sealed_postal_code="").values_list("pk", "sealed_postal_code")
        return [pk for pk, value in rows if _stale(value, current)]

    def _model(self, app_label: str, name: str):
        return apps.get_model(app_label, name) if apps.is_installed(app_label) else None

    def _channels(self, current: str) -> int:
        rotated = 0
        for pk in self._stale_channels(current):
            with transaction.atomic():
                channel = Channel.objects.select_for_update().get(pk=pk)
                stale = [n for n, v in channel.sealed_secrets.items() if _stale(v, current)]
                for name in stale:
                    channel.set_secret(name, channel.secret(name))
                if stale:
                    channel.save(update_fields=["sealed_secrets", "secret_hints"])
                    rotated += len(stale)
        return rotated

    def _endpoints(self, current: str) -> int:
        endpoint_model = self._model("events", "WebhookEndpoint")
        if endpoint_model is None:
            return 0
        from events.services import secret_context

        rotated = 0
        for pk in self._stale_endpoints(current):
            endpoint = endpoint_model.objects.get(pk=pk)
            context = secret_context(endpoint)
            plain = vault.open_sealed(endpoint.sealed_secret, context=context)
            resealed = vault.seal(plain, context=context)
            # Compare-and-swap: a secret changed meanwhile (rotated by its team) is left alone.
            rotated += endpoint_model.objects.filter(
                pk=pk, sealed_secret=endpoint.sealed_secret
            ).update(sealed_secret=resealed)
        return rotated

    def _claims(self, current: str) -> int:
        claim_model = self._model("claims", "Claim")
        if claim_model is None:
            return 0
        from claims.services import postal_context

        rotated = 0
        for pk in self._stale_claims(current):
            claim = claim_model.objects.get(pk=pk)
            if not claim.sealed_postal_code:
                continue  # verified meanwhile: the postal code is gone, nothing to re-seal
            context = postal_context(claim)
            plain = vault.open_sealed(claim.sealed_postal_code, context=context)
            resealed = vault.seal(plain, context=context)
            # Compare-and-swap: verification clears the code; it must not come back.
            rotated += claim_model.objects.filter(
                pk=pk, sealed_postal_code=claim.sealed_postal_code
            ).update(sealed_postal_code=resealed)
        return rotated
