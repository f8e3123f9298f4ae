"""Reading recipes and simple Ansible playbooks into plays and tasks, refusing what we cannot run.

Three shapes are accepted:
- a playbook: a list of plays (`hosts`, `vars`, `become`, `tasks`, `handlers`);
- a task list: a list of tasks, run on the hosts the job targets;
- a recipe: a mapping with `name`, `description`, `vars`, `become`, `tasks`, `handlers`.

Everything is checked before anything runs: unknown modules, unknown parameters,
missing required ones, bad choices and unknown task keywords are reported with the
file, line and column of the offending text. YAML errors keep PyYAML's own position.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from panel.lib import safe_yaml

from .modules import MODULES, ModuleSpecError, resolve_module


class RecipeError(ValueError):
    """A recipe that cannot run; the message names the file, line and column."""


class LineDict(dict):
    """A mapping that remembers where it and each of its keys were written."""

    line = 0
    column = 0
    key_marks: dict

    def mark_of(self, key):
        return self.key_marks.get(key, (self.line, self.column))


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


MarkedLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, MarkedLoader.construct_mapping)
MarkedLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, MarkedLoader.construct_sequence)

TASK_KEYWORDS = {
    "name", "become", "become_user", "when", "register", "notify", "changed_when", "failed_when",
    "ignore_errors", "loop", "with_items", "tags", "vars", "no_log", "args", "timeout", "listen",
}
PLAY_KEYWORDS = {"name", "hosts", "become", "become_user", "vars", "tasks", "handlers", "gather_facts", "tags", "remote_user", "pre_tasks", "post_tasks", "description"}


@dataclass
class Task:
    name: str
    module: str
    args: dict
    line: int
    column: int
    become: bool | None = None
    when: object = None
    register: str = ""
    notify: list = field(default_factory=list)
    changed_when: object = None
    failed_when: object = None
    ignore_errors: bool = False
    loop: object = None
    vars: dict = field(default_factory=dict)
    no_log: bool = False
    timeout: float | None = None
    listen: list = field(default_factory=list)
    notify_line: int = 0

    @property
    def label(self):
        return self.name or self.module


@dataclass
class Play:
    name: str
    hosts: str | None
    tasks: list
    handlers: list = field(default_factory=list)
    vars: dict = field(default_factory=dict)
    become: bool = False
    gather_facts: bool = False
    line: int = 1


@dataclass
class Recipe:
    name: str
    plays: list
    description: str = ""
    source: str = "recipe"
    base_dir: Path | None = None
    # Where `copy`/`template` may read `src` files: only below base_dir, unless trusted (CLI).
    trusted_paths: bool = False

    @property
    def task_count(self):
        return sum(len(play.tasks) for play in self.plays)


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


def parse_recipe(text, source="recipe", base_dir=None, trusted_paths=False, name=None):
    """Parse and check a recipe, task list or playbook. Raises RecipeError."""
    if isinstance(text, bytes):
        text = text.decode("utf-8-sig", errors="replace")
    text = text.replace("\r\n", "\n")
    data = load_yaml(text, source)
    if data is None:
        raise RecipeError(f"{source}: the file is empty; write a list of tasks or plays.")
    description = ""
    if isinstance(data, dict):
        unknown = set(data) - PLAY_KEYWORDS
        if unknown:
            key = sorted(unknown, key=str)[0]
            line, column = data.mark_of(key)
            raise RecipeError(f"{_where(source, line, column)}: unknown recipe keyword {key!r}. Known: {', '.join(sorted(PLAY_KEYWORDS))}.")
        description = str(data.get("description", ""))
        plays = [_parse_play(data, source)]
        name = name or str(data.get("name", "") or "")
    elif isinstance(data, list):
        if not data:
            raise RecipeError(f"{source}: the list is empty; nothing to run.")
        if all(isinstance(item, dict) and ("hosts" in item or "tasks" in item) for item in data):
            plays = [_parse_play(item, source) for item in data]
        else:
            plays = [Play(name="", hosts=None, tasks=_parse_tasks(data, source), line=getattr(data, "line", 1))]
    else:
        raise RecipeError(f"{source}, line 1: expected a list of tasks or plays, found {type(data).__name__}.")
    recipe = Recipe(name=name or (plays[0].name if plays else ""), plays=plays, description=description, source=source,
                    base_dir=Path(base_dir) if base_dir else None, trusted_paths=trusted_paths)
    _check_handlers(recipe)
    return recipe


def _parse_play(data, source):
    if not isinstance(data, dict):
        raise RecipeError(f"{_where(source, getattr(data, 'line', 1))}: a play must be a mapping.")
    for key in data:
        if key not in PLAY_KEYWORDS:
            line, column = data.mark_of(key)
            raise RecipeError(f"{_where(source, line, column)}: unknown play keyword {key!r}. Known: {', '.join(sorted(PLAY_KEYWORDS))}.")
    if "remote_user" in data:
        line, column = data.mark_of("remote_user")
        raise RecipeError(f"{_where(source, line, column)}: remote_user is not supported; each server's SSH user comes from the inventory.")
    hosts = data.get("hosts")
    if isinstance(hosts, list):
        hosts = ",".join(str(item) for item in hosts)
    variables = data.get("vars") or {}
    if not isinstance(variables, dict):
        raise RecipeError(f"{_where(source, *data.mark_of('vars'))}: vars must be a mapping.")
    tasks = []
    for key in ("pre_tasks", "tasks", "post_tasks"):
        if data.get(key) is not None:
            tasks.extend(_parse_tasks(data[key], source, where=data.mark_of(key)))
    handlers = _parse_tasks(data.get("handlers") or [], source, where=data.mark_of("handlers"))
    become = _bool(data.get("become", False), source, data.mark_of("become"), "become")
    if data.get("become_user") not in (None, "root"):
        raise RecipeError(f"{_where(source, *data.mark_of('become_user'))}: become_user other than root is not supported.")
    return Play(
        name=str(data.get("name") or ""), hosts=str(hosts) if hosts is not None else None, tasks=tasks, handlers=handlers,
        vars=dict(variables), become=become, gather_facts=_bool(data.get("gather_facts", False), source, data.mark_of("gather_facts"), "gather_facts"),
        line=data.line,
    )


def _bool(value, source, mark, name):
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("yes", "true", "on", "1", "no", "false", "off", "0"):
        return value.lower() in ("yes", "true", "on", "1")
    if isinstance(value, int):
        return bool(value)
    raise RecipeError(f"{_where(source, *mark)}: {name} must be yes or no, not {value!r}.")


def _parse_tasks(items, source, where=None):
    if not isinstance(items, list):
        line, column = where or (getattr(items, "line", 1), None)
        raise RecipeError(f"{_where(source, line, column)}: tasks must be a list.")
    return [_parse_task(item, source) for item in items]


def _parse_task(data, source):
    if not isinstance(data, dict):
        raise RecipeError(f"{_where(source, getattr(data, 'line', '?'))}: a task must be a mapping such as `- name: ...` with one module.")
    module_keys = [key for key in data if key not in TASK_KEYWORDS]
    name = str(data.get("name") or "")
    if "include_tasks" in data or "import_tasks" in data or "block" in data or "include_role" in data or "import_playbook" in data:
        key = next(k for k in ("include_tasks", "import_tasks", "block", "include_role", "import_playbook") if k in data)
        raise RecipeError(f"{_where(source, *data.mark_of(key))}: {key} is not supported; put the tasks in one file.")
    if not module_keys:
        raise RecipeError(f"{_where(source, data.line, data.column)}: task {name!r} names no module.")
    if len(module_keys) > 1:
        key = module_keys[1]
        raise RecipeError(
            f"{_where(source, *data.mark_of(key))}: task {name!r} has several modules or an unknown keyword ({', '.join(map(str, module_keys))}); "
            f"a task uses one module. Known keywords: {', '.join(sorted(TASK_KEYWORDS))}."
        )
    key = module_keys[0]
    line, column = data.mark_of(key)
    try:
        module = resolve_module(str(key))
    except ModuleSpecError:
        raise RecipeError(
            f"{_where(source, line, column)}: unsupported module {key!r} in task {name!r}. "
            f"Supported: {', '.join(sorted(MODULES))}."
        ) from None
    raw = data[key]
    args = _module_args(module, raw, source, line, column)
    if data.get("args"):
        if not isinstance(data["args"], dict):
            raise RecipeError(f"{_where(source, *data.mark_of('args'))}: args must be a mapping.")
        args = {**data["args"], **args}
    try:
        args = module.check_args(args, marks=getattr(raw, "key_marks", {}) if isinstance(raw, dict) else {})
    except ModuleSpecError as exc:
        arg_line, arg_column = (raw.mark_of(exc.param) if isinstance(raw, LineDict) and exc.param in raw else (line, column))
        raise RecipeError(f"{_where(source, arg_line, arg_column)}: {module.name} in task {name!r}: {exc}") from None
    if data.get("become_user") not in (None, "root"):
        raise RecipeError(f"{_where(source, *data.mark_of('become_user'))}: become_user other than root is not supported.")
    notify = data.get("notify") or []
    listen = data.get("listen") or []
    return Task(
        name=name, module=module.name, args=args, line=line, column=column,
        become=_bool(data["become"], source, data.mark_of("become"), "become") if "become" in data else None,
        when=data.get("when"), register=str(data.get("register") or ""),
        notify=[notify] if isinstance(notify, str) else list(notify),
        changed_when=data.get("changed_when"), failed_when=data.get("failed_when"),
        ignore_errors=_bool(data.get("ignore_errors", False), source, data.mark_of("ignore_errors"), "ignore_errors"),
        loop=data.get("loop", data.get("with_items")), vars=dict(data.get("vars") or {}),
        no_log=_bool(data.get("no_log", False), source, data.mark_of("no_log"), "no_log"),
        timeout=float(data["timeout"]) if data.get("timeout") else None,
        listen=[listen] if isinstance(listen, str) else list(listen),
        notify_line=data.mark_of("notify")[0] if "notify" in data else line,
    )


def _module_args(module, raw, source, line, column):
    if raw is None:
        return {}
    if isinstance(raw, dict):
        return dict(raw)
    if isinstance(raw, str):
        if module.free_form:
            return {"_raw_params": raw}
        try:
            words = shlex.split(raw)
        except ValueError as exc:
            raise RecipeError(f"{_where(source, line, column)}: cannot read {module.name} arguments ({exc}).") from None
        args = {}
        for word in words:
            if "=" not in word:
                raise RecipeError(f"{_where(source, line, column)}: {module.name} expects key=value arguments, found {word!r}.")
            key, _, value = word.partition("=")
            args[key] = value
        return args
    raise RecipeError(f"{_where(source, line, column)}: arguments of {module.name} must be a mapping.")


def _check_handlers(recipe):
    for play in recipe.plays:
        known = {handler.name for handler in play.handlers} | {topic for handler in play.handlers for topic in handler.listen}
        for task in play.tasks:
            for name in task.notify:
                if name not in known:
                    raise RecipeError(f"{_where(recipe.source, task.notify_line)}: task {task.label!r} notifies {name!r}, which is not a handler of this play.")
