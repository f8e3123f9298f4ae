"""Encryption of secrets at rest with the dedicated credential keys (never SECRET_KEY).

settings.CREDENTIAL_KEYS holds one or more Fernet keys: the first encrypts, every one
decrypts. Rotation = put the new key first, run `manage.py rotate_credential_keys`,
then drop the old key.
"""

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted with any configured key."""


@lru_cache(maxsize=4)
def _fernet_for(keys):
    try:
        return MultiFernet([Fernet(key.encode() if isinstance(key, str) else key) for key in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "FILROUGE_CREDENTIAL_KEYS must be comma-separated Fernet keys "
            "(generate one with `manage.py generate_credential_key`)."
        ) from exc


def fernet():
    return _fernet_for(tuple(settings.CREDENTIAL_KEYS))


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable(
            "A stored secret cannot be decrypted with the configured credential keys; "
            "was a key removed from FILROUGE_CREDENTIAL_KEYS before rotation finished?"
        ) from exc


def rotate(token: str) -> str:
    """Re-encrypt a token with the first (current) key."""
    return fernet().rotate(token.encode()).decode()


def generate_key() -> str:
    return Fernet.generate_key().decode()
