"""Checks: declarative tests that the panel runs from outside a student environment.

Each check type is a function `(params: dict, target: CheckTarget) -> Outcome`, registered
in CHECKS under its type name (http, docker.container_running, kubernetes.object, ssh.file_contains...).
Modules register their checks on import (see labs/checks/base.py `check`).
"""

from importlib import import_module


def load_all():
    """Import every check module so that CHECKS and SCHEMAS are complete (a missing one is skipped)."""
    for name in ("http", "docker", "kubernetes", "ssh"):
        try:
            import_module(f"labs.checks.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"labs.checks.{name}":
                raise
