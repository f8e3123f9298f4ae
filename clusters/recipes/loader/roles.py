"""Reading roles: where a role is found, its defaults, vars, meta dependencies, tasks and handlers."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from .keywords import MAX_INCLUDE_DEPTH, NATIVE_ROLE_KEYWORDS
from .model import RoleScope
from .values import as_list


class RoleReading:
    """The reader's verbs for roles (Reader combines them)."""

    def find_role(self, name, scope):
        if "{{" in name:
            return None
        candidates = []
        if scope.role is not None:
            candidates.append(scope.role.path.parent / name)
        candidates += [path / name for path in self.roles_path]
        if Path(name).is_absolute():
            candidates.insert(0, Path(name))
        for candidate in candidates:
            if candidate.is_dir() and any((candidate / part).exists() for part in ("tasks", "handlers", "defaults", "vars", "meta", "templates", "files")):
                return candidate
        return None

    def role_from_play(self, item, play_data, source, scope):
        line, column = getattr(item, "line", play_data.mark_of("roles")[0]), getattr(item, "column", None)
        if isinstance(item, str):
            spec = {"role": str(item)}
        elif isinstance(item, dict):
            spec = item
            if "role" not in spec and "name" not in spec:
                self.problem(source, line, column, "a role entry needs `role:` (its name).")
                return [], []
        else:
            self.problem(source, line, column, "each entry of roles must be a role name or a mapping with `role:`.")
            return [], []
        name = str(spec.get("role") or spec.get("name"))
        params = {key: value for key, value in spec.items() if key not in ("role", "name") and key not in (self.ansible_keywords("role") or NATIVE_ROLE_KEYWORDS)}
        for key in spec:
            if key in ("role", "name") or key in params or key in NATIVE_ROLE_KEYWORDS:
                continue
            self.fallback(source, line, f"role keyword {key} is not native")
        role_scope = self.child_scope(scope, spec, source)
        return self.expand_role(name, role_scope, params, source, line, column, seen=set())

    def expand_role(self, name, scope, params, source, line, column, seen, tasks_from="main", handlers=True):
        """The tasks and handlers of a role, its dependencies first."""
        path = self.find_role(name, scope)
        if path is None:
            if "{{" in name:
                self.fallback(source, line, "a role with a templated name is not native")
            elif name.count(".") >= 2:
                self.fallback(source, line, f"the collection role {name} is not native")
            elif self.base_dir is None:
                self.problem(source, line, column, f"role {name!r} needs the project folder with its roles/ directory; upload the "
                                                   "project (zip or tar.gz) or run the playbook from its folder.")
            else:
                looked = ", ".join(self.label_of(path) for path in self.roles_path)
                self.problem(source, line, column, f"role {name!r} not found (looked in {looked}).")
            return [], []
        key = (str(path), repr(sorted(params.items(), key=str)), tasks_from)
        if key in seen or scope.depth > MAX_INCLUDE_DEPTH:
            return [], []
        seen.add(key)
        defaults = self.role_mapping(path / "defaults", source, line)
        role_vars = {**self.role_mapping(path / "vars", source, line), **params}
        role = RoleScope(name=path.name, path=path, defaults=defaults, vars=role_vars)
        inner = replace(scope, role=role, directory=path / "tasks", search_dirs=(path / "files", path / "templates", path / "tasks", path),
                        depth=scope.depth + 1)
        tasks, role_handlers = [], []
        meta_file = main_file(path / "meta")
        if meta_file is not None:
            meta, label = self.read_yaml_file(meta_file, source, line, column, "role meta")
            if isinstance(meta, dict):
                for dependency in as_list(meta.get("dependencies")):
                    dep_name = dependency if isinstance(dependency, str) else (dependency.get("role") or dependency.get("name")) if isinstance(dependency, dict) else None
                    if not dep_name:
                        continue
                    dep_params = {k: v for k, v in dependency.items() if k not in ("role", "name") and k not in NATIVE_ROLE_KEYWORDS} if isinstance(dependency, dict) else {}
                    dep_scope = self.child_scope(replace(scope, role=role), dependency if isinstance(dependency, dict) else {}, label)
                    dep_tasks, dep_handlers = self.expand_role(str(dep_name), dep_scope, dep_params, label, getattr(dependency, "line", 1), None, seen)
                    tasks.extend(dep_tasks)
                    role_handlers.extend(dep_handlers)
        tasks_file = main_file(path / "tasks", tasks_from)
        if tasks_file is not None:
            tasks.extend(self.task_file(tasks_file, inner, source, line, column))
        elif tasks_from != "main":
            self.problem(source, line, column, f"role {name!r} has no tasks file {tasks_from!r}.")
        handlers_file = main_file(path / "handlers")
        if handlers and handlers_file is not None:
            role_handlers.extend(self.task_file(handlers_file, inner, source, line, column, handlers=True))
        return tasks, role_handlers

    def role_mapping(self, folder, source, line):
        path = main_file(folder)
        if path is None:
            return {}
        data, label = self.read_yaml_file(path, source, line, None, "role variables")
        if data is None:
            return {}
        if not isinstance(data, dict):
            self.problem(label, 1, None, "role defaults and vars must be a mapping.")
            return {}
        return dict(data)

    def task_file(self, path, scope, source, line, column, handlers=False):
        data, label = self.read_yaml_file(path, source, line, column, "tasks file")
        if data is None:
            return []
        if not isinstance(data, list):
            self.problem(label, 1, None, "a tasks file must be a list of tasks.")
            return []
        inner = replace(scope, source=label, directory=path.parent, depth=scope.depth + 1)
        return self.tasks(data, inner, handlers=handlers)


def main_file(folder, stem="main"):
    if not folder.is_dir():
        return None
    for suffix in (".yml", ".yaml", ""):
        path = folder / f"{stem}{suffix}"
        if path.is_file():
            return path
    if Path(stem).suffix and (folder / stem).is_file():
        return folder / stem
    return None
