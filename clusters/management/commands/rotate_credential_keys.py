"""manage.py rotate_credential_keys: re-encrypt every stored secret with the current (first) key.

Rotation: put a new key first in FILROUGE_CREDENTIAL_KEYS (keep the old one after it),
restart, run this command, then remove the old key.
"""

from cryptography.fernet import InvalidToken
from django.core.management.base import CommandError
from django.db import transaction

from clusters.models import Credential
from panel.lib import crypto
from panel.lib.commands import PanelCommand


class Command(PanelCommand):
    help = "Re-encrypt every credential secret with the first key of FILROUGE_CREDENTIAL_KEYS."

    def handle(self, **options):
        rotated = 0
        with transaction.atomic():
            for credential in Credential.objects.select_for_update().only("pk", "name", "secret_encrypted"):
                if not credential.secret_encrypted:
                    continue
                try:
                    token = crypto.rotate(credential.secret_encrypted)
                except (InvalidToken, crypto.SecretUnreadable):
                    raise CommandError(f"Credential {credential.name} cannot be decrypted with any configured key; "
                                       "was a key removed from FILROUGE_CREDENTIAL_KEYS before rotation finished?") from None
                Credential.objects.filter(pk=credential.pk).update(secret_encrypted=token)
                rotated += 1
            rotated += _rotate_kube_records()
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {rotated} credential(s) with the current key."))


def _rotate_kube_records():
    """Stored manifest sets and isolated-namespace kubeconfigs are encrypted with the same keys."""
    from clusters.models import IsolatedNamespaceRecord, ManifestSet

    rotated = 0
    for model, field in ((ManifestSet, "text_encrypted"), (IsolatedNamespaceRecord, "kubeconfig_encrypted")):
        for row in model.objects.select_for_update().exclude(**{field: ""}).only("pk", field):
            try:
                token = crypto.rotate(getattr(row, field))
            except (InvalidToken, crypto.SecretUnreadable):
                raise CommandError(f"{model.__name__} #{row.pk} cannot be decrypted with any configured key; "
                                   "was a key removed from FILROUGE_CREDENTIAL_KEYS before rotation finished?") from None
            model.objects.filter(pk=row.pk).update(**{field: token})
            rotated += 1
    return rotated
