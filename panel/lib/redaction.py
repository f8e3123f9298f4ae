"""Keep secrets out of job lines and logs.

Jobs redact the exact values they were handed (credential secrets, tokens); logs and
job lines also lose anything shaped like a private key or a Filrouge API token.
"""

import logging
import re

REDACTED = "[redacted]"

_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)", re.S)
_API_TOKEN = re.compile(r"\bfrg_[A-Za-z0-9]{8}_[A-Za-z0-9_-]{20,}")
_SECRET_LINE = re.compile(r"[A-Za-z0-9+/=]{16,}")
_AUTH_HEADER = re.compile(r"(?i)(authorization:\s*(?:bearer|token|basic)\s+)\S+")


def redact_patterns(text: str) -> str:
    text = _PRIVATE_KEY.sub(REDACTED, text)
    text = _API_TOKEN.sub(REDACTED, text)
    return _AUTH_HEADER.sub(r"\1" + REDACTED, text)


class Redactor:
    """Replaces known secret values (longest first, so a secret containing another goes whole)."""

    MIN_LENGTH = 4  # shorter values would blank out ordinary words

    def __init__(self, secrets=()):
        self._secrets = set()
        for value in secrets:
            self.add(value)

    def add(self, value):
        if value is None:
            return
        value = str(value)
        if len(value) < self.MIN_LENGTH:
            return
        self._secrets.add(value)
        # Multi-line secrets (private keys) also leak line by line: their base64 body
        # lines. Only those: a line with spaces or punctuation is text that may be
        # ordinary elsewhere (a whole YAML document must not blank out `namespace: default`).
        if "\n" in value.strip():
            for line in value.splitlines():
                if _SECRET_LINE.fullmatch(line.strip()):
                    self._secrets.add(line.strip())

    def __call__(self, text: str) -> str:
        if not text:
            return text
        for value in sorted(self._secrets, key=len, reverse=True):
            if value in text:
                text = text.replace(value, REDACTED)
        return redact_patterns(text)


class RedactingLogFilter(logging.Filter):
    def filter(self, record):
        if isinstance(record.msg, str):
            message = record.getMessage()
            cleaned = redact_patterns(message)
            if cleaned != message:
                record.msg, record.args = cleaned, None
        return True
