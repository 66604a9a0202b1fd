from django.core.management.base import BaseCommand
from django.db import transaction

from channels_app import vault
from channels_app.models import Channel


class Command(BaseCommand):
    help = (
        "Re-encrypt every channel secret under the newest key of FLASH_VAULT_KEYS. Put the new "
        "key first in the ring, run this, then drop the old key from the ring."
    )

    def handle(self, *args, **options):
        current = vault.ring().current_id
        rotated = 0
        for pk in Channel.objects.values_list("pk", flat=True):
            with transaction.atomic():
                channel = Channel.objects.select_for_update().get(pk=pk)
                stale = [
                    n for n, v in channel.sealed_secrets.items() if vault.key_id_of(v) != current
                ]
                for name in stale:
                    channel.set_secret(name, channel.secret(name))
                if stale:
                    channel.save(update_fields=["sealed_secrets", "secret_hints"])
                    rotated += len(stale)
        self.stdout.write(f"{rotated} secret(s) re-encrypted under key '{current}'.")
