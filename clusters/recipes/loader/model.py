"""What a recipe becomes once read: plays of tasks (blocks nest tasks), roles, fallbacks."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


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


def flush_handlers_task():
    return Task(name="flush handlers", module="meta", args={"_raw_params": "flush_handlers"}, line=0, column=0)


def leaf_tasks(tasks):
    for task in tasks:
        if task.is_block:
            yield from leaf_tasks(task.block)
            yield from leaf_tasks(task.rescue)
            yield from leaf_tasks(task.always)
        else:
            yield task


def add_tags(tasks, tags):
    for task in tasks:
        task.tags = task.tags | tags
        if task.is_block:
            add_tags(task.block, tags)
            add_tags(task.rescue, tags)
            add_tags(task.always, tags)
