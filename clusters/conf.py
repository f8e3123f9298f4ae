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

# Playbooks the native engine cannot run go to ansible-runner; where it finds collections.
ANSIBLE_COLLECTIONS_PATHS = [
    path for path in (getattr(settings, "ANSIBLE_COLLECTIONS_PATHS", None) or os.environ.get(
        "FILROUGE_ANSIBLE_COLLECTIONS_PATHS",
        os.pathsep.join(["~/.ansible/collections", "/usr/share/ansible/collections", "/usr/lib/python3/dist-packages"]),
    )).split(os.pathsep) if path
]
ANSIBLE_COLLECTIONS_PATHS = [os.path.expanduser(path) for path in ANSIBLE_COLLECTIONS_PATHS]
# An uploaded project (zip or tar.gz of a playbook, roles/, group_vars/, files/): its size limits.
PROJECT_ARCHIVE_MAX_BYTES = _number("PROJECT_ARCHIVE_MAX_BYTES", 2 * 1024 * 1024, int)
PROJECT_EXTRACTED_MAX_BYTES = _number("PROJECT_EXTRACTED_MAX_BYTES", 20 * 1024 * 1024, int)
# "auto" (the native engine when it can run the playbook, else ansible-runner) or "ansible-runner" (always; to compare).
RECIPE_ENGINE = getattr(settings, "RECIPE_ENGINE", None) or os.environ.get("FILROUGE_RECIPE_ENGINE", "auto")
