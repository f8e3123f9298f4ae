"""Inventory settings, from the environment (twelve-factor) with safe defaults."""

import os

from django.conf import settings


def _number(name, default, kind=float):
    return kind(getattr(settings, name, None) or os.environ.get(f"FILROUGE_{name}", default))


SSH_FORKS = _number("SSH_FORKS", 20, int)  # hosts worked on at once by one job
SSH_CONNECT_TIMEOUT = _number("SSH_CONNECT_TIMEOUT", 10)
SSH_COMMAND_TIMEOUT = _number("SSH_COMMAND_TIMEOUT", 600)
SSH_PROBE_INTERVAL = _number("SSH_PROBE_INTERVAL", 60, int)
SSH_PROBE_TIMEOUT = _number("SSH_PROBE_TIMEOUT", 5)
SSH_PROBE_FORKS = _number("SSH_PROBE_FORKS", 20, int)
