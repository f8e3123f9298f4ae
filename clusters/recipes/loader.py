"""Reading recipes and Ansible playbooks into plays and tasks, and deciding which engine runs them.

Three shapes are accepted:
- a playbook: a list of plays (`hosts`, `vars`, `vars_files`, `roles`, `tasks`, `handlers`...),
  with `import_playbook`, roles (tasks, handlers, defaults, vars, templates, files, meta
  dependencies), `import_tasks` / `include_tasks`, `import_role` / `include_role`, blocks;
- a task list: a list of tasks, run on the hosts the job targets;
- a recipe: a mapping with `name`, `description`, `vars`, `become`, `tasks`, `handlers`.

Everything is read before anything runs, and every problem is reported at once, each
with its file, line and column. Two kinds of findings:
- problems: what Ansible would refuse too (YAML errors, unknown keywords, a module
  neither native nor known to Ansible, a missing role or file); the recipe is refused;
- fallbacks: what Ansible runs but the native engine does not (a module such as
  `wait_for`, a lookup plugin, a strategy...); the recipe is accepted and the job
  runs it through ansible-runner, saying why on its first line.
"""

from __future__ import annotations

import configparser
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from panel.lib import safe_yaml

from . import ansible_compat
from .modules import INTERNAL_MODULES, MODULES, ModuleSpecError, resolve_module
from .templating import scan

MAX_INCLUDE_DEPTH = 20


class RecipeError(ValueError):
    """A recipe that cannot run; the message names the file, line and column of every problem."""

    def __init__(self, message, problems=None):
        super().__init__(message)
        self.problems = problems or [message]


class LineDict(dict):
    """A mapping that remembers where it and each of its keys were written."""

    line = 0
    column = 0
    key_marks: dict

    def mark_of(self, key):
        return getattr(self, "key_marks", {}).get(key, (self.line, self.column))


class LineList(list):
    line = 0
    column = 0


class MarkedLoader(safe_yaml.SafeLoader):
    """A SafeLoader whose mappings and sequences carry their 1-based line and column."""

    def construct_mapping(self, node, deep=False):
        mapping = LineDict(super().construct_mapping(node, deep=True))
        mapping.line, mapping.column = node.start_mark.line + 1, node.start_mark.column + 1
        mapping.key_marks = {}
        for key_node, _value in node.value:
            try:
                key = self.construct_object(key_node, deep=True)
                mapping.key_marks[key] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            except TypeError:  # an unhashable key is reported by the mapping itself
                pass
        return mapping

    def construct_sequence(self, node, deep=False):
        items = LineList(super().construct_sequence(node, deep=True))
        items.line, items.column = node.start_mark.line + 1, node.start_mark.column + 1
        return items

    def construct_undefined(self, node):
        # Ansible's !vault and !unsafe tags: keep the value, the runner engine reads the file itself.
        if isinstance(node, yaml.ScalarNode):
            return self.construct_scalar(node)
        return None


MarkedLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, MarkedLoader.construct_mapping)
MarkedLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, MarkedLoader.construct_sequence)
MarkedLoader.add_constructor("!unsafe", MarkedLoader.construct_undefined)
MarkedLoader.add_constructor("!vault", MarkedLoader.construct_undefined)

# What the native engine runs. Anything else Ansible knows goes to ansible-runner.
NATIVE_TASK_KEYWORDS = {
    "name", "become", "become_user", "become_method", "when", "register", "notify", "changed_when", "failed_when",
    "ignore_errors", "loop", "loop_control", "tags", "vars", "no_log", "args", "timeout", "listen", "environment",
    "until", "retries", "delay", "check_mode", "diff", "connection", "delegate_to", "remote_user", "action",
    "local_action", "collections",
}
NATIVE_BLOCK_KEYWORDS = {
    "name", "block", "rescue", "always", "become", "become_user", "become_method", "when", "tags", "vars", "ignore_errors",
    "no_log", "environment", "check_mode", "diff", "connection", "delegate_to", "remote_user", "collections", "timeout",
}
NATIVE_PLAY_KEYWORDS = {
    "name", "hosts", "become", "become_user", "become_method", "vars", "vars_files", "vars_prompt", "tasks", "pre_tasks",
    "post_tasks", "handlers", "roles", "gather_facts", "gather_subset", "gather_timeout", "fact_path", "tags",
    "remote_user", "connection", "serial", "collections", "environment", "ignore_errors", "no_log", "check_mode",
    "diff", "timeout", "strategy",
}
NATIVE_ROLE_KEYWORDS = {"role", "name", "tags", "when", "vars", "become", "become_user", "become_method", "environment",
                        "connection", "delegate_to", "remote_user", "collections", "ignore_errors", "no_log", "check_mode", "diff"}
RECIPE_KEYWORDS = {"name", "description", "hosts", "become", "become_user", "vars", "tasks", "handlers", "gather_facts", "tags",
                   "remote_user", "pre_tasks", "post_tasks"}
# Loops the native engine understands; other `with_<lookup>` forms are lookup plugins: ansible-runner.
NATIVE_LOOPS = {"items", "list", "dict", "nested", "cartesian", "together", "fileglob", "indexed_items", "flattened", "sequence"}
INCLUDES = ("include_tasks", "import_tasks", "include_role", "import_role")
LOCALHOST = {"localhost", "127.0.0.1", "::1"}



@dataclass
class RoleScope:
    """One role of a play: its variables and the folders its files and templates come from."""

    name: str
    path: Path
    defaults: dict = field(default_factory=dict)
    vars: dict = field(default_factory=dict)


@dataclass
class Task:
    name: str
    module: str
    args: dict
    line: int
    column: int
    source: str = ""
    become: bool | None = None
    become_user: str | None = None
    when: list = field(default_factory=list)
    register: str = ""
    notify: list = field(default_factory=list)
    changed_when: object = None
    failed_when: object = None
    ignore_errors: bool = False
    loop: object = None
    loop_kind: str = ""
    loop_var: str = "item"
    index_var: str = ""
    loop_label: object = None
    vars: dict = field(default_factory=dict)
    no_log: bool = False
    timeout: float | None = None
    listen: list = field(default_factory=list)
    notify_line: int = 0
    tags: frozenset = frozenset()
    block: list | None = None
    rescue: list = field(default_factory=list)
    always: list = field(default_factory=list)
    role: RoleScope | None = None
    search_dirs: tuple = ()
    local: bool = False
    environment: object = None
    until: object = None
    retries: int = 3
    delay: float = 5.0
    check_mode: bool | None = None
    remote_user: str = ""

    @property
    def label(self):
        if self.name:
            return f"{self.role.name} : {self.name}" if self.role else self.name
        return self.module

    @property
    def is_block(self):
        return self.block is not None


@dataclass
class Play:
    name: str
    hosts: str | None
    tasks: list
    handlers: list = field(default_factory=list)
    vars: dict = field(default_factory=dict)
    become: bool = False
    become_user: str | None = None
    gather_facts: bool | None = False  # None: gather if the tasks use facts
    gather_args: dict = field(default_factory=dict)  # gather_subset / gather_timeout, for the setup run
    line: int = 1
    remote_user: str = ""
    connection: str = "ssh"
    serial: list = field(default_factory=list)
    vars_prompt: list = field(default_factory=list)

    @property
    def units(self):
        """What progress counts: the play's top-level tasks (a block is one)."""
        return [task for task in self.tasks if not (task.module == "meta" and task.args.get("_raw_params") == "flush_handlers" and task.line == 0)]


@dataclass
class Fallback:
    """Why the native engine hands this recipe to ansible-runner."""

    source: str
    line: int
    reason: str

    main_source: str = ""

    def __str__(self):
        where = "" if self.source == self.main_source else f"{self.source} "
        if not self.source:
            return self.reason
        return f"{self.reason}, {where}line {self.line}" if self.line else f"{self.reason} ({self.source})"


@dataclass
class Recipe:
    name: str
    plays: list
    description: str = ""
    source: str = "recipe"
    base_dir: Path | None = None
    # Where `copy`/`template` may read `src` files: only below base_dir, unless trusted (CLI).
    trusted_paths: bool = False
    fallbacks: list = field(default_factory=list)
    # For ansible-runner: the playbook file (a project folder) or its text (shapes other than a playbook).
    playbook_path: Path | None = None
    playbook_text: str = ""
    group_vars: dict = field(default_factory=dict)
    host_vars: dict = field(default_factory=dict)
    uses_facts: bool = False

    @property
    def task_count(self):
        return sum(len(play.units) for play in self.plays)

    @property
    def engine(self):
        return "ansible-runner" if self.fallbacks else "native"

    def engine_reason(self):
        if not self.fallbacks:
            return "every task is native"
        first = str(self.fallbacks[0])
        more = len(self.fallbacks) - 1
        return first + (f"; and {more} more" if more else "")


def _where(source, line, column=None):
    return f"{source}, line {line}" + (f", column {column}" if column else "")


def load_yaml(text, source):
    try:
        return safe_yaml.load(text, Loader=MarkedLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if mark is not None:
            raise RecipeError(f"{_where(source, mark.line + 1, mark.column + 1)}: {problem}") from None
        raise RecipeError(f"{source}: {problem}") from None
    except yaml.YAMLError as exc:
        raise RecipeError(f"{source}: invalid YAML ({exc})") from None


@dataclass
class _Scope:
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


class _Reader:
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
        text = f"{_where(source, line, column)}: {message}" if line else f"{source}: {message}"
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

    # ---- plays ----------------------------------------------------------------------

    def playbook(self, data, source, directory, depth=0):
        plays = []
        for item in data:
            if not isinstance(item, dict):
                self.problem(source, getattr(item, "line", 0), None, "a play must be a mapping such as `- hosts: web`.")
                continue
            if "import_playbook" in item:
                plays.extend(self.import_playbook(item, source, directory, depth))
            elif "include" in item and "hosts" not in item:
                line, column = item.mark_of("include")
                self.problem(source, line, column, f"the play-level `include` was removed from Ansible (2.16); write "
                                                   f"`import_playbook: {item.get('include')}` instead.")
            else:
                play = self.play(item, source, directory)
                if play is not None:
                    plays.append(play)
        return plays

    def import_playbook(self, item, source, directory, depth):
        line, column = item.mark_of("import_playbook")
        name = item.get("import_playbook")
        extra = set(item) - {"import_playbook", "name", "vars", "tags", "when"}
        if extra:
            key = sorted(extra, key=str)[0]
            self.problem(source, *item.mark_of(key), f"{key!r} is not valid beside import_playbook.")
        if not isinstance(name, str) or not name:
            self.problem(source, line, column, "import_playbook needs a file name.")
            return []
        if "{{" in name:
            self.fallback(source, line, "import_playbook with a templated file name is not native")
            return []
        if depth > MAX_INCLUDE_DEPTH:
            self.problem(source, line, column, "import_playbook nests too deeply (a loop?).")
            return []
        if self.base_dir is None and directory is None:
            self.problem(source, line, column, f"import_playbook {name} needs the project folder; upload the project (zip or tar.gz) "
                                               "or run the playbook from its folder.")
            return []
        path = (directory or self.base_dir) / name
        if not path.is_file() and name.count(".") >= 2 and "/" not in name:
            self.fallback(source, line, f"import_playbook of the collection playbook {name} is not native")
            return []
        if not path.is_file():
            self.problem(source, line, column, f"import_playbook: {name} not found (looked for {self.label_of(path)}).")
            return []
        data, label = self.read_yaml_file(path, source, line, column, "playbook")
        if data is None:
            return []
        if not isinstance(data, list):
            self.problem(label, 1, None, "a playbook must be a list of plays.")
            return []
        plays = self.playbook(data, label, path.parent, depth + 1)
        extra_vars = dict(item.get("vars") or {}) if isinstance(item.get("vars"), dict) else {}
        extra_tags = _tags(item.get("tags"))
        for play in plays:
            play.vars = {**play.vars, **extra_vars}
            if item.get("when") is not None:
                for task in play.tasks:
                    task.when = [item["when"], *task.when]
            if extra_tags:
                _add_tags(play.tasks, extra_tags)
        return plays

    def play(self, data, source, directory, recipe_shape=False):
        allowed = RECIPE_KEYWORDS if recipe_shape else None
        ansible_known = self.ansible_keywords("play")
        for key in data:
            line, column = data.mark_of(key)
            if recipe_shape:
                if key not in allowed:
                    self.problem(source, line, column, f"unknown recipe keyword {key!r}. Known: {', '.join(sorted(allowed))}.")
                continue
            if key in NATIVE_PLAY_KEYWORDS:
                continue
            if ansible_known is not None and key in ansible_known:
                self.fallback(source, line, f"play keyword {key} is not native")
                continue
            known = sorted(ansible_known or NATIVE_PLAY_KEYWORDS)
            self.problem(source, line, column, f"{key!r} is not a play keyword. Play keywords: {', '.join(known)}.")
        if "hosts" not in data and not recipe_shape:
            self.problem(source, data.line, data.column, "a play needs `hosts:` (a group, a host name, or all).")
        hosts = data.get("hosts")
        if isinstance(hosts, list):
            hosts = ",".join(str(item) for item in hosts)
        if hosts is not None and re.search(r"\[|~|\{\{", str(hosts)):
            self.fallback(source, data.mark_of("hosts")[0], f"the host pattern {hosts!r} is not native")
        variables = data.get("vars") or {}
        if not isinstance(variables, dict):
            self.problem(source, *data.mark_of("vars"), "vars must be a mapping.")
            variables = {}
        variables = dict(variables)
        variables.update(self.vars_files(data, source, directory))
        prompts = self.vars_prompt(data, source)
        become = _bool(self, data.get("become", False), source, data.mark_of("become"), "become")
        become_user = self.become_user(data, source)
        connection = str(data.get("connection") or "ssh")
        if connection not in ("ssh", "local", "smart", "paramiko", "paramiko_ssh", "ansible.builtin.ssh", "ansible.builtin.local"):
            self.fallback(source, data.mark_of("connection")[0], f"connection {connection} is not native")
        local = connection.endswith("local")
        strategy = data.get("strategy")
        if strategy is not None and str(strategy).rsplit(".", 1)[-1] not in ("linear", "free"):
            self.fallback(source, data.mark_of("strategy")[0], f"strategy {strategy} is not native")
        gather = data.get("gather_facts")
        gather_facts = None if gather is None and not recipe_shape else _bool(self, gather or False, source, data.mark_of("gather_facts"), "gather_facts")
        scope = _Scope(source=source, directory=directory, tags=_tags(data.get("tags")), become=None, local=local,
                       environment=data.get("environment"),
                       ignore_errors=_bool(self, data["ignore_errors"], source, data.mark_of("ignore_errors"), "ignore_errors") if "ignore_errors" in data else None,
                       no_log=_bool(self, data["no_log"], source, data.mark_of("no_log"), "no_log") if "no_log" in data else None,
                       check_mode=_bool(self, data["check_mode"], source, data.mark_of("check_mode"), "check_mode") if "check_mode" in data else None,
                       search_dirs=tuple(path for path in (directory,) if path))
        tasks, handlers = [], []
        pre = self.task_list(data, "pre_tasks", scope)
        if pre:
            tasks.extend(pre)
            tasks.append(_flush())
        roles = data.get("roles")
        for index, role_item in enumerate(_as_list(roles)):
            if isinstance(role_item, str) and isinstance(roles, LineList):
                role_item = _Marked(role_item, roles.line + index, roles.column + 2)
            role_tasks, role_handlers = self.role_from_play(role_item, data, source, scope)
            tasks.extend(role_tasks)
            handlers.extend(role_handlers)
        tasks.extend(self.task_list(data, "tasks", scope))
        post = self.task_list(data, "post_tasks", scope)
        if post:
            tasks.append(_flush())
            tasks.extend(post)
        handlers.extend(self.task_list(data, "handlers", scope, handlers=True))
        handlers = self.role_handlers + handlers
        self.role_handlers = []
        self.check_notify(tasks, handlers)
        timeout = data.get("timeout")
        if timeout:
            for task in _leaves(tasks):
                task.timeout = task.timeout or _number(timeout)
        return Play(
            name=str(data.get("name") or ""), hosts=str(hosts) if hosts is not None else None, tasks=tasks, handlers=handlers,
            vars=variables, become=become, become_user=become_user, gather_facts=gather_facts, line=data.line,
            gather_args={key: data[key] for key in ("gather_subset", "gather_timeout") if data.get(key) is not None},
            remote_user=str(data.get("remote_user") or ""), connection="local" if local else "ssh",
            serial=self.serial(data, source), vars_prompt=prompts,
        )

    def serial(self, data, source):
        value = data.get("serial")
        if value in (None, "", 0):
            return []
        items = value if isinstance(value, list) else [value]
        batches = []
        for item in items:
            text = str(item).strip()
            if re.fullmatch(r"\d+%?", text):
                batches.append(text)
            elif "{{" in text:
                self.fallback(source, data.mark_of("serial")[0], "a templated serial is not native")
                return []
            else:
                self.problem(source, *data.mark_of("serial"), f"serial must be a number, a percentage or a list of them, not {item!r}.")
        return batches

    def become_user(self, data, source):
        method = data.get("become_method")
        if method is not None and str(method).rsplit(".", 1)[-1] != "sudo":
            self.fallback(source, data.mark_of("become_method")[0], f"become_method {method} is not native (sudo is)")
        user = data.get("become_user")
        return str(user) if user not in (None, "") else None

    def vars_files(self, data, source, directory):
        merged = {}
        line, column = data.mark_of("vars_files")
        for entry in _as_list(data.get("vars_files")):
            names = entry if isinstance(entry, list) else [entry]  # a list: the first that exists
            if any("{{" in str(name) for name in names):
                self.fallback(source, line, "vars_files with a templated name is not native")
                continue
            if self.base_dir is None and directory is None:
                self.problem(source, line, column, f"vars_files {names[0]} needs the project folder; upload the project "
                                                   "(zip or tar.gz) or run the playbook from its folder.")
                continue
            found = next((path for name in names if (path := (directory or self.base_dir) / str(name)).is_file()), None)
            if found is None:
                self.problem(source, line, column, f"vars_files: {', '.join(map(str, names))} not found.")
                continue
            loaded, label = self.read_yaml_file(found, source, line, column, "vars file")
            if loaded is None:
                continue
            if not isinstance(loaded, dict):
                self.problem(label, 1, None, "a vars file must be a mapping of names to values.")
                continue
            merged.update(loaded)
        return merged

    def vars_prompt(self, data, source):
        prompts = []
        for item in _as_list(data.get("vars_prompt")):
            if not isinstance(item, dict) or "name" not in item:
                self.problem(source, *data.mark_of("vars_prompt"), "each vars_prompt entry needs a name.")
                continue
            prompts.append({"name": str(item["name"]), "default": item.get("default"), "private": item.get("private", True)})
        return prompts

    # ---- roles ----------------------------------------------------------------------

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
        meta_file = _main_file(path / "meta")
        if meta_file is not None:
            meta, label = self.read_yaml_file(meta_file, source, line, column, "role meta")
            if isinstance(meta, dict):
                for dependency in _as_list(meta.get("dependencies")):
                    dep_name = dependency if isinstance(dependency, str) else (dependency.get("role") or dependency.get("name")) if isinstance(dependency, dict) else None
                    if not dep_name:
                        continue
                    dep_params = {k: v for k, v in dependency.items() if k not in ("role", "name") and k not in NATIVE_ROLE_KEYWORDS} if isinstance(dependency, dict) else {}
                    dep_scope = self.child_scope(replace(scope, role=role), dependency if isinstance(dependency, dict) else {}, label)
                    dep_tasks, dep_handlers = self.expand_role(str(dep_name), dep_scope, dep_params, label, getattr(dependency, "line", 1), None, seen)
                    tasks.extend(dep_tasks)
                    role_handlers.extend(dep_handlers)
        tasks_file = _main_file(path / "tasks", tasks_from)
        if tasks_file is not None:
            tasks.extend(self.task_file(tasks_file, inner, source, line, column))
        elif tasks_from != "main":
            self.problem(source, line, column, f"role {name!r} has no tasks file {tasks_from!r}.")
        handlers_file = _main_file(path / "handlers")
        if handlers and handlers_file is not None:
            role_handlers.extend(self.task_file(handlers_file, inner, source, line, column, handlers=True))
        return tasks, role_handlers

    def role_mapping(self, folder, source, line):
        path = _main_file(folder)
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

    # ---- tasks ----------------------------------------------------------------------

    def task_list(self, data, key, scope, handlers=False):
        items = data.get(key)
        if items is None:
            return []
        if not isinstance(items, list):
            self.problem(scope.source, *data.mark_of(key), f"{key} must be a list.")
            return []
        return self.tasks(items, scope, handlers=handlers)

    def tasks(self, items, scope, handlers=False):
        result = []
        for item in items:
            result.extend(self.task(item, scope, handlers))
        return result

    def child_scope(self, scope, data, source):
        """Keywords a block, include or role hands down to what it contains."""
        if not isinstance(data, dict):
            return scope
        mark = data.mark_of if isinstance(data, LineDict) else (lambda key: (getattr(data, "line", 0), None))
        when = scope.when + tuple(_as_list(data.get("when"))) if data.get("when") is not None else scope.when
        variables = {**scope.vars, **data["vars"]} if isinstance(data.get("vars"), dict) else scope.vars
        local = scope.local
        if data.get("connection") is not None:
            local = str(data["connection"]).endswith("local")
        if data.get("delegate_to") is not None:
            local = self.delegate_local(data, source) or local
        if data.get("become_method") is not None and str(data["become_method"]).rsplit(".", 1)[-1] != "sudo":
            self.fallback(source, mark("become_method")[0], f"become_method {data['become_method']} is not native (sudo is)")
        return replace(
            scope, when=when, tags=scope.tags | _tags(data.get("tags")), vars=variables,
            become=_bool(self, data["become"], source, mark("become"), "become") if "become" in data else scope.become,
            become_user=str(data["become_user"]) if data.get("become_user") else scope.become_user,
            local=local, environment=data.get("environment", scope.environment),
            ignore_errors=_bool(self, data["ignore_errors"], source, mark("ignore_errors"), "ignore_errors") if "ignore_errors" in data else scope.ignore_errors,
            no_log=_bool(self, data["no_log"], source, mark("no_log"), "no_log") if "no_log" in data else scope.no_log,
            check_mode=_bool(self, data["check_mode"], source, mark("check_mode"), "check_mode") if "check_mode" in data else scope.check_mode,
        )

    def delegate_local(self, data, source):
        target = str(data.get("delegate_to"))
        if target in LOCALHOST:
            return True
        self.fallback(source, data.mark_of("delegate_to")[0], f"delegate_to {target} is not native (only localhost is)")
        return False

    def task(self, data, scope, handlers=False):
        source = scope.source
        if not isinstance(data, dict):
            self.problem(source, getattr(data, "line", 0), None, "a task must be a mapping such as `- name: ...` with one module.")
            return []
        if "block" in data:
            return self.block(data, scope, handlers)
        ansible_task = self.ansible_keywords("task")
        task_keywords = (ansible_task | {"listen"}) if ansible_task is not None else NATIVE_TASK_KEYWORDS
        name = str(data.get("name") or "")
        loop_keys = [key for key in data if isinstance(key, str) and key.startswith("with_")]
        action_keys = [key for key in data if key not in task_keywords and key not in loop_keys]
        if "action" in data or "local_action" in data:
            action_keys = [key for key in action_keys if key not in ("action", "local_action")] + [k for k in ("action", "local_action") if k in data]
        for key in data:
            if key in task_keywords and key not in NATIVE_TASK_KEYWORDS and key not in ("action", "local_action"):
                self.fallback(source, data.mark_of(key)[0], f"task keyword {key} is not native")
        if "include" in action_keys:
            line, column = data.mark_of("include")
            self.problem(source, line, column, "the task-level `include` was removed from Ansible (2.16); write include_tasks or import_tasks.")
            return []
        if not action_keys:
            self.problem(source, data.line, data.column, f"task {name!r} names no module (no action found among {', '.join(map(str, data))}).")
            return []
        if len(action_keys) > 1:
            key = action_keys[1]
            self.problem(source, *data.mark_of(key),
                         f"task {name!r} has several modules or an unknown keyword ({', '.join(map(str, action_keys))}); a task uses one "
                         f"module. Task keywords: {', '.join(sorted(task_keywords))}.")
            return []
        key = action_keys[0]
        line, column = data.mark_of(key)
        raw = data[key]
        module_name = str(key)
        local = False
        if key in ("action", "local_action"):
            local = key == "local_action"
            module_name, raw = _split_action(raw)
            if not module_name:
                self.problem(source, line, column, f"{key} needs a module, such as `{key}: command echo hi`.")
                return []
        inherited = ("become", "become_user", "become_method", "environment", "connection", "delegate_to")
        inner = self.child_scope(scope, _with_marks({k: v for k, v in data.items() if k in inherited}, getattr(data, "key_marks", {}), data), source)
        if local:
            inner = replace(inner, local=True)
        short = module_name.rsplit(".", 1)[-1] if module_name.startswith(("ansible.builtin.", "ansible.legacy.")) else module_name
        if short in INCLUDES:
            return self.include(short, raw, data, inner, line, column, handlers)
        loop, loop_kind = self.loop(data, loop_keys, source)
        loop_control = data.get("loop_control") or {}
        if not isinstance(loop_control, dict):
            self.problem(source, *data.mark_of("loop_control"), "loop_control must be a mapping.")
            loop_control = {}
        for option in loop_control:
            if option not in ("loop_var", "index_var", "label"):
                self.fallback(source, data.mark_of("loop_control")[0], f"loop_control.{option} is not native")
        try:
            module = resolve_module(module_name)
        except ModuleSpecError:
            module = None
        if module is None:
            known = ansible_compat.module_known(module_name)
            if known:
                self.fallback(source, line, f"module {module_name} is not native")
                self.scan_task_templates(data, source, line)
                return [self.make_task(data, known, {}, line, column, inner, loop, loop_kind, loop_control, handlers)]
            supported = ", ".join(sorted(name for name in MODULES if name not in INTERNAL_MODULES))
            hint = "" if ansible_compat.available() else " (ansible-core is not installed, so only native modules can run)"
            self.problem(source, line, column, f"unknown module {module_name!r} in task {name!r}: it is not native, and Ansible knows no "
                                               f"such module or action with the collections installed here{hint}. Native: {supported}.")
            return []
        args = self.module_args(module, raw, source, line, column)
        if args is None:
            return []
        if data.get("args"):
            if not isinstance(data["args"], dict):
                self.problem(source, *data.mark_of("args"), "args must be a mapping.")
                return []
            args = {**data["args"], **args}
        try:
            args = module.check_args(args, marks=getattr(raw, "key_marks", {}) if isinstance(raw, dict) else {})
        except ModuleSpecError as exc:
            arg_line, arg_column = (raw.mark_of(exc.param) if isinstance(raw, LineDict) and exc.param in raw else (line, column))
            if exc.unknown_param:
                self.fallback(source, arg_line, f"parameter {exc.param} of {module.name} is not native")
                return [self.make_task(data, module_name, {}, line, column, inner, loop, loop_kind, loop_control, handlers)]
            self.problem(source, arg_line, arg_column, f"{module.name} in task {name!r}: {exc}")
            return []
        self.scan_task_templates(data, source, line)
        if module.name in ("template",) and isinstance(args.get("src"), str) and "{{" not in args["src"]:
            self.scan_template_file(args["src"], inner, source, line)
        return [self.make_task(data, module.name, args, line, column, inner, loop, loop_kind, loop_control, handlers)]

    def make_task(self, data, module, args, line, column, scope, loop, loop_kind, loop_control, handlers):
        source = scope.source
        name = str(data.get("name") or "")
        notify = data.get("notify") or []
        listen = data.get("listen") or []
        until = data.get("until")
        if "become_user" in data and not data.get("become_user"):
            self.problem(source, *data.mark_of("become_user"), "become_user is empty.")
        return Task(
            name=name, module=module, args=args, line=line, column=column, source=source,
            become=scope.become, become_user=scope.become_user,
            when=[*scope.when, *_as_list(data.get("when"))] if data.get("when") is not None else list(scope.when),
            register=str(data.get("register") or ""),
            notify=[notify] if isinstance(notify, str) else [str(item) for item in notify],
            changed_when=data.get("changed_when"), failed_when=data.get("failed_when"),
            ignore_errors=_bool(self, data["ignore_errors"], source, data.mark_of("ignore_errors"), "ignore_errors") if "ignore_errors" in data else bool(scope.ignore_errors),
            loop=loop, loop_kind=loop_kind, loop_var=str(loop_control.get("loop_var") or "item"),
            index_var=str(loop_control.get("index_var") or ""), loop_label=loop_control.get("label"),
            vars={**scope.vars, **(dict(data.get("vars")) if isinstance(data.get("vars"), dict) else {})},
            no_log=_bool(self, data["no_log"], source, data.mark_of("no_log"), "no_log") if "no_log" in data else bool(scope.no_log),
            timeout=_number(data["timeout"]) if data.get("timeout") else None,
            listen=[listen] if isinstance(listen, str) else [str(item) for item in listen],
            notify_line=data.mark_of("notify")[0] if "notify" in data else line,
            tags=scope.tags | _tags(data.get("tags")), role=scope.role, search_dirs=scope.search_dirs, local=scope.local,
            environment=scope.environment,
            until=until, retries=int(_number(data.get("retries", 3)) or 3) if "{{" not in str(data.get("retries", "")) else 3,
            delay=_number(data.get("delay", 5)) if "{{" not in str(data.get("delay", "")) else 5,
            check_mode=_bool(self, data["check_mode"], source, data.mark_of("check_mode"), "check_mode") if "check_mode" in data else scope.check_mode,
            remote_user=str(data.get("remote_user") or ""),
        )

    def block(self, data, scope, handlers):
        source = scope.source
        ansible_block = self.ansible_keywords("block")
        for key in data:
            line, column = data.mark_of(key)
            if key in NATIVE_BLOCK_KEYWORDS:
                continue
            if ansible_block is not None and key in ansible_block:
                self.fallback(source, line, f"block keyword {key} is not native")
                continue
            self.problem(source, line, column, f"{key!r} is not a block keyword. Block keywords: {', '.join(sorted(ansible_block or NATIVE_BLOCK_KEYWORDS))}.")
        inner = self.child_scope(scope, data, source)
        parts = {}
        for key in ("block", "rescue", "always"):
            items = data.get(key)
            if items is None:
                parts[key] = []
            elif not isinstance(items, list):
                self.problem(source, *data.mark_of(key), f"{key} must be a list of tasks.")
                parts[key] = []
            else:
                parts[key] = self.tasks(items, inner, handlers)
        line, column = data.mark_of("block")
        return [Task(name=str(data.get("name") or ""), module="block", args={}, line=line, column=column, source=source,
                     block=parts["block"], rescue=parts["rescue"], always=parts["always"], tags=inner.tags, role=scope.role)]

    def include(self, kind, raw, data, scope, line, column, handlers):
        source = scope.source
        name_key = "file" if kind.endswith("tasks") else "name"
        params = raw if isinstance(raw, dict) else {}
        target = params.get(name_key) or params.get("_raw_params") or (raw if isinstance(raw, str) else None)
        if isinstance(target, str) and target.startswith(("file=", "name=")):
            target = target.split("=", 1)[1].strip()
        if not target or not isinstance(target, str):
            self.problem(source, line, column, f"{kind} needs a {'file' if name_key == 'file' else 'role name'}.")
            return []
        loops = [key for key in data if isinstance(key, str) and (key == "loop" or key.startswith("with_"))]
        if loops:
            self.fallback(source, line, f"{kind} with a loop is not native")
            return []
        if "{{" in target:
            self.fallback(source, line, f"{kind} of a templated name is not native")
            return []
        inner = self.child_scope(scope, _with_marks({k: v for k, v in data.items() if k in ("when", "tags", "vars", "ignore_errors", "no_log", "check_mode")},
                                                    getattr(data, "key_marks", {}), data), source)
        apply = params.get("apply") if isinstance(params, dict) else None
        if isinstance(apply, dict):
            inner = self.child_scope(inner, apply, source)
        if inner.depth > MAX_INCLUDE_DEPTH:
            self.problem(source, line, column, f"{kind} nests too deeply (an include loop?).")
            return []
        if kind.endswith("role"):
            role_params = {k: v for k, v in params.items() if k not in ("name", "tasks_from", "handlers_from", "vars_from", "defaults_from",
                                                                        "apply", "public", "allow_duplicates", "rolespec_validate")}
            for option in ("vars_from", "defaults_from", "handlers_from"):
                if option in params:
                    self.fallback(source, line, f"{kind} {option} is not native")
            tasks, role_handlers = self.expand_role(target, inner, {}, source, line, column, seen=set(),
                                                    tasks_from=str(params.get("tasks_from") or "main"))
            for task in _leaves(tasks):
                task.vars = {**role_params, **task.vars}
            self.role_handlers.extend(role_handlers)
            return tasks
        if self.base_dir is None and scope.directory is None and scope.role is None:
            self.problem(source, line, column, f"{kind} {target} needs the project folder; upload the project (zip or tar.gz) "
                                               "or run the playbook from its folder.")
            return []
        path = self.find_file(target, scope, "tasks")
        if path is None:
            self.problem(source, line, column, f"{kind}: {target} not found.")
            return []
        return self.task_file(path, inner, source, line, column, handlers=handlers)

    def loop(self, data, loop_keys, source):
        if "loop" in data and loop_keys:
            self.problem(source, *data.mark_of(loop_keys[0]), f"a task takes loop or {loop_keys[0]}, not both.")
        if len(loop_keys) > 1:
            self.problem(source, *data.mark_of(loop_keys[1]), f"a task takes one loop ({', '.join(loop_keys)}).")
        if "loop" in data:
            return data["loop"], "loop"
        if not loop_keys:
            return None, ""
        key = loop_keys[0]
        kind = key[len("with_"):]
        if kind not in NATIVE_LOOPS:
            if ansible_compat.available() and not ansible_compat.lookup_known(kind):
                self.problem(source, *data.mark_of(key), f"{key}: Ansible has no lookup plugin named {kind!r}.")
            else:
                self.fallback(source, data.mark_of(key)[0], f"{key} (the {kind} lookup) is not native")
        return data[key], kind

    def module_args(self, module, raw, source, line, column):
        if raw is None:
            return {}
        if isinstance(raw, dict):
            return dict(raw)
        if isinstance(raw, (str, int, float)):
            raw = str(raw)
            if module.free_form:
                return _free_form(raw)
            try:
                words = split_args(raw)
            except ValueError as exc:
                self.problem(source, line, column, f"cannot read {module.name} arguments ({exc}).")
                return None
            args = {}
            for word in words:
                if "=" not in word:
                    if module.name in ("meta", "fail", "debug", "set_fact") or module.raw_params_ok:
                        return {"_raw_params": raw}
                    self.problem(source, line, column, f"{module.name} expects key=value arguments, found {word!r}.")
                    return None
                key, _, value = word.partition("=")
                args[key] = value
            return args
        self.problem(source, line, column, f"arguments of {module.name} must be a mapping.")
        return None

    def check_notify(self, tasks, handlers):
        known = set()
        for handler in handlers:
            known.add(handler.name)
            known.update(handler.listen)
            if handler.role is not None:
                known.add(f"{handler.role.name} : {handler.name}")
        for task in _leaves(tasks):
            for name in task.notify:
                if name not in known and "{{" not in name:
                    self.problem(task.source, task.notify_line, None, f"task {task.label!r} notifies {name!r}, which is not a handler of this play.")

    # ---- templates ------------------------------------------------------------------

    def scan_task_templates(self, data, source, line):
        for key, value in data.items():
            if key in ("name",):
                continue
            expression = key in ("when", "changed_when", "failed_when", "until")
            self.scan_value(value, source, line, expression)

    def scan_value(self, value, source, line, expression=False):
        if isinstance(value, str):
            found = scan(value, expression=expression)
            if found.error:
                return  # a broken template fails its task with the exact message at run time, as in Ansible
            self.note_template(found, source, line)
        elif isinstance(value, list):
            for item in value:
                self.scan_value(item, source, line, expression)
        elif isinstance(value, dict):
            for item in value.values():
                self.scan_value(item, source, line, expression)

    def note_template(self, found, source, line):
        for lookup in sorted(found.lookups):
            self.fallback(source, line, f"the lookup {lookup} is not native")
        for name in sorted(found.filters):
            self.fallback(source, line, f"the filter {name} is not native")
        for name in sorted(found.tests):
            self.fallback(source, line, f"the test {name} is not native")
        for name in sorted(found.facts_missing):
            self.fallback(source, line, f"the fact {name} is not gathered natively")
        if found.hostvars:
            self.fallback(source, line, "hostvars (other hosts' variables and facts) is not native")
        if found.facts:
            self.uses_facts = True

    def scan_template_file(self, src, scope, source, line):
        candidates = [Path(src)] if Path(src).is_absolute() else [Path(directory) / src for directory in scope.search_dirs]
        if self.base_dir is not None and not Path(src).is_absolute():
            candidates += [self.base_dir / "templates" / src, self.base_dir / src]
        for candidate in candidates:
            if candidate.is_file() and self.inside(candidate):
                try:
                    text = candidate.read_text(errors="replace")
                except OSError:
                    return
                found = scan(text, whole_file=True)
                if not found.error:
                    self.note_template(found, self.label_of(candidate), 0)
                return


class _Marked(str):
    """A plain string (a role name) with the line and column it was written at."""

    def __new__(cls, value, line, column):
        text = super().__new__(cls, value)
        text.line, text.column = line, column
        return text


def _with_marks(data, marks, original):
    mapping = LineDict(data)
    mapping.key_marks = marks
    mapping.line, mapping.column = getattr(original, "line", 0), getattr(original, "column", 0)
    return mapping


def _flush():
    return Task(name="flush handlers", module="meta", args={"_raw_params": "flush_handlers"}, line=0, column=0)


def _leaves(tasks):
    for task in tasks:
        if task.is_block:
            yield from _leaves(task.block)
            yield from _leaves(task.rescue)
            yield from _leaves(task.always)
        else:
            yield task


def _add_tags(tasks, tags):
    for task in tasks:
        task.tags = task.tags | tags
        if task.is_block:
            _add_tags(task.block, tags)
            _add_tags(task.rescue, tags)
            _add_tags(task.always, tags)


def _main_file(folder, stem="main"):
    if not folder.is_dir():
        return None
    for suffix in (".yml", ".yaml", ""):
        path = folder / f"{stem}{suffix}"
        if path.is_file():
            return path
    if Path(stem).suffix and (folder / stem).is_file():
        return folder / stem
    return None


def _as_list(value):
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _tags(value):
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset(item.strip() for item in value.split(",") if item.strip())
    if isinstance(value, list):
        return frozenset(str(item) for item in value)
    return frozenset({str(value)})


def _number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def split_args(text):
    """`key=value` words as Ansible splits them: quotes and {{ ... }} / {% ... %} stay in one word; quotes are removed."""
    words, current, quote, depth = [], [], None, 0
    index = 0
    while index < len(text):
        char = text[index]
        pair = text[index:index + 2]
        if quote:
            if char == "\\" and index + 1 < len(text) and text[index + 1] == quote:
                current.append(quote)
                index += 2
                continue
            if char == quote:
                quote = None
            else:
                current.append(char)
        elif pair in ("{{", "{%", "{#"):
            depth += 1
            current.append(pair)
            index += 2
            continue
        elif pair in ("}}", "%}", "#}") and depth:
            depth -= 1
            current.append(pair)
            index += 2
            continue
        elif char in ("'", '"') and not depth:
            quote = char
        elif char.isspace() and not depth:
            if current:
                words.append("".join(current))
                current = []
        else:
            current.append(char)
        index += 1
    if quote:
        raise ValueError("a quote is not closed")
    if current:
        words.append("".join(current))
    return words


def _free_form(raw):
    """`command: ls -l chdir=/tmp creates=/x`: the words, less Ansible's key=value options at the end or start."""
    options = {}
    words = raw.split(" ")
    kept = []
    for word in words:
        key, sep, value = word.partition("=")
        if sep and key in ("chdir", "creates", "removes", "executable", "warn", "stdin") and value:
            options[key] = value
        else:
            kept.append(word)
    options.pop("warn", None)
    text = " ".join(kept).strip()
    return {"_raw_params": text, **options} if text else options


def _split_action(raw):
    """`action: module args` or `action: {module: x, ...}` into (module name, its arguments)."""
    if isinstance(raw, dict):
        if "module" in raw:
            args = {k: v for k, v in raw.items() if k != "module"}
            module = str(raw["module"])
            if " " in module:
                module, _, rest = module.partition(" ")
                return module, rest
            return module, args
        if len(raw) == 1:
            key = next(iter(raw))
            return str(key), raw[key]
        return "", None
    if isinstance(raw, str) and raw.strip():
        module, _, rest = raw.strip().partition(" ")
        return module, rest.strip() or None
    return "", None


def _bool(reader, value, source, mark, name):
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("yes", "true", "on", "1", "no", "false", "off", "0", "y", "n"):
        return value.strip().lower() in ("yes", "true", "on", "1", "y")
    if isinstance(value, int):
        return bool(value)
    if isinstance(value, str) and "{{" in value:
        reader.fallback(source, mark[0], f"a templated {name} is not native")
        return False
    reader.problem(source, mark[0], mark[1], f"{name} must be yes or no, not {value!r}.")
    return False


def parse_recipe(text, source="recipe", base_dir=None, trusted_paths=False, name=None, playbook_path=None):
    """Parse and check a recipe, task list or playbook. Raises RecipeError listing every problem."""
    if isinstance(text, bytes):
        text = text.decode("utf-8-sig", errors="replace")
    text = text.replace("\r\n", "\n")
    data = load_yaml(text, source)
    if data is None:
        raise RecipeError(f"{source}: the file is empty; write a list of tasks or plays.")
    reader = _Reader(source, base_dir, trusted_paths)
    directory = Path(base_dir).resolve() if base_dir else None
    description = ""
    is_playbook = False
    if isinstance(data, dict):
        description = str(data.get("description", ""))
        play = reader.play(data, source, directory, recipe_shape=True)
        plays = [play] if play is not None else []
        name = name or str(data.get("name", "") or "")
    elif isinstance(data, list):
        if not data:
            raise RecipeError(f"{source}: the list is empty; nothing to run.")
        if any(isinstance(item, dict) and ("hosts" in item or "import_playbook" in item) for item in data) \
                or all(isinstance(item, dict) and ("tasks" in item or "roles" in item) for item in data):
            plays = reader.playbook(data, source, directory)
            is_playbook = True
        else:
            scope = _Scope(source=source, directory=directory, search_dirs=tuple(path for path in (directory,) if path))
            tasks = reader.tasks(data, scope)
            reader.check_notify(tasks, [])
            plays = [Play(name="", hosts=None, tasks=tasks, line=getattr(data, "line", 1))]
    else:
        raise RecipeError(f"{source}, line 1: expected a list of tasks or plays, found {type(data).__name__}.")
    if reader.problems:
        count = len(reader.problems)
        header = "" if count == 1 else f"{count} problems:\n"
        raise RecipeError(header + "\n".join(reader.problems), problems=list(reader.problems))
    recipe = Recipe(name=name or (plays[0].name if plays else ""), plays=plays, description=description, source=source,
                    base_dir=directory, trusted_paths=trusted_paths, fallbacks=reader.fallbacks, uses_facts=reader.uses_facts)
    # What ansible-runner would run (needed when a fallback exists, or when an operator forces that engine).
    if is_playbook and playbook_path is not None:
        recipe.playbook_path = Path(playbook_path)
    elif is_playbook:
        recipe.playbook_text = text
    else:
        recipe.playbook_text = as_playbook(data)
    if directory is not None:
        recipe.group_vars, recipe.host_vars = _project_vars(directory, reader)
        if reader.problems:
            raise RecipeError("\n".join(reader.problems), problems=list(reader.problems))
    for play in recipe.plays:
        if play.gather_facts is None:
            play.gather_facts = reader.uses_facts
    return recipe


def _project_vars(directory, reader):
    """group_vars/ and host_vars/ next to the playbook, as Ansible reads them."""
    found = {}
    for kind in ("group_vars", "host_vars"):
        folder = directory / kind
        values = {}
        if folder.is_dir():
            for entry in sorted(folder.iterdir()):
                files = [entry] if entry.is_file() else sorted(path for path in entry.rglob("*") if path.is_file()) if entry.is_dir() else []
                target = entry.stem if entry.is_file() and entry.suffix in (".yml", ".yaml", ".json") else entry.name
                if entry.is_file() and entry.suffix not in (".yml", ".yaml", ".json", ""):
                    continue
                for path in files:
                    if path.suffix not in (".yml", ".yaml", ".json", ""):
                        continue
                    data, label = reader.read_yaml_file(path, reader.source, 0, None, kind)
                    if data is None:
                        continue
                    if not isinstance(data, dict):
                        reader.problem(label, 1, None, f"a {kind} file must be a mapping.")
                        continue
                    values.setdefault(target, {}).update(data)
        found[kind] = values
    return found["group_vars"], found["host_vars"]


def as_playbook(data):
    """A task list or a recipe mapping as an Ansible playbook (for ansible-runner)."""
    import json

    plain = json.loads(json.dumps(data, default=str))
    if isinstance(plain, list):
        play = {"hosts": "all", "gather_facts": False, "tasks": plain}
    else:
        play = {key: value for key, value in plain.items() if key not in ("description",)}
        play.setdefault("hosts", "all")
        play.setdefault("gather_facts", False)
    return yaml.safe_dump([play], sort_keys=False, default_flow_style=False)
