"""Checks: declarative tests that the panel runs from outside a student environment.

Each check type is a function `(params: dict, target: CheckTarget) -> Outcome`, registered
in CHECKS under its type name (http, docker.container_running, kubernetes.object, ssh.file_contains...).
Modules register their checks on import (see labs/checks/base.py `check`).
"""
