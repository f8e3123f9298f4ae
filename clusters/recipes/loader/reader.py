"""The reader: one object that reads a recipe and collects its problems and fallbacks."""

from __future__ import annotations

import configparser
from pathlib import Path

from .. import ansible_compat
from .errors import RecipeError, location
from .marked_yaml import load_yaml
from .model import Fallback
from .plays import PlayReading
from .roles import RoleReading
from .tasks import TaskReading
from .template_scan import TemplateScanning


class Reader(PlayReading, RoleReading, TaskReading, TemplateScanning):
    """One reading of a recipe: the problems and fallbacks it found so far, and the files it may read.

    Its verbs are grouped by what they read, one module each (plays, roles, tasks,
    template_scan); this class holds what they share: findings and file access."""

    def __init__(self, source, base_dir, trusted_paths):
        self.source = source
        self.base_dir = Path(base_dir).resolve() if base_dir else None
        self.trusted_paths = trusted_paths
        self.problems = []
        self.fallbacks = []
        self.uses_facts = False
        self.role_handlers = []  # handlers of roles brought in by import_role / include_role, for the play being read
        self.roles_path = self._roles_path()

    # ---- findings ------------------------------------------------------------------

    def problem(self, source, line, column, message):
        text = f"{location(source, line, column)}: {message}" if line else f"{source}: {message}"
        if text not in self.problems:
            self.problems.append(text)

    def fallback(self, source, line, reason):
        if not any(item.reason == reason for item in self.fallbacks):
            self.fallbacks.append(Fallback(source, line, reason, main_source=self.source))

    def ansible_keywords(self, kind):
        known = ansible_compat.keywords()
        return known[kind] if known else None

    # ---- files ---------------------------------------------------------------------

    def _roles_path(self):
        paths = []
        if self.base_dir is not None:
            paths.append(self.base_dir / "roles")
            config = self.base_dir / "ansible.cfg"
            if config.is_file():
                parser = configparser.ConfigParser(interpolation=None)
                try:
                    parser.read(config)
                    for entry in parser.get("defaults", "roles_path", fallback="").split(":"):
                        if entry.strip():
                            paths.append((self.base_dir / Path(entry.strip()).expanduser()).resolve())
                except configparser.Error:
                    pass
            paths.append(self.base_dir)
        return paths

    def label_of(self, path):
        if self.base_dir is not None:
            try:
                return str(Path(path).resolve().relative_to(self.base_dir))
            except ValueError:
                pass
        return str(path)

    def inside(self, path):
        if self.trusted_paths or self.base_dir is None:
            return True
        return Path(path).resolve().is_relative_to(self.base_dir)

    def read_yaml_file(self, path, source, line, column, what):
        if not self.inside(path):
            self.problem(source, line, column, f"{what} {path} is outside the project folder.")
            return None, None
        try:
            text = Path(path).read_text(encoding="utf-8-sig")
        except OSError as exc:
            self.problem(source, line, column, f"cannot read {what} {self.label_of(path)} ({exc.strerror or exc}).")
            return None, None
        label = self.label_of(path)
        try:
            return load_yaml(text.replace("\r\n", "\n"), label), label
        except RecipeError as exc:
            self.problems.append(str(exc))
            return None, None

    def find_file(self, name, scope, kind):
        """A file named in an include or vars_files: next to the including file, in the role, in the project."""
        candidates = []
        if Path(name).is_absolute():
            candidates.append(Path(name))
        else:
            if scope.directory is not None:
                candidates.append(scope.directory / name)
            if scope.role is not None:
                candidates.append(scope.role.path / kind / name)
                candidates.append(scope.role.path / name)
            if self.base_dir is not None:
                candidates.append(self.base_dir / name)
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        return None
