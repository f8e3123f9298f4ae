"""What blocks, includes and roles hand down to the tasks inside them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .model import RoleScope


@dataclass
class Scope:
    """What blocks, includes and roles hand down to the tasks inside them."""

    source: str
    directory: Path | None
    when: tuple = ()
    tags: frozenset = frozenset()
    vars: dict = field(default_factory=dict)
    become: bool | None = None
    become_user: str | None = None
    role: RoleScope | None = None
    search_dirs: tuple = ()
    local: bool = False
    environment: object = None
    ignore_errors: bool | None = None
    no_log: bool | None = None
    check_mode: bool | None = None
    depth: int = 0
