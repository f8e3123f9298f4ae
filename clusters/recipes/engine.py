"""Running a recipe on many hosts at once: a bounded thread pool, one SSH connection per host.

Each host goes through a play's tasks on its own (a slow or failing host never holds up
the others; plays, and `serial` batches within a play, are the only points where hosts
wait for each other); every task reports ok / changed / failed / skipped with its diff as
a job line tagged with the host and the task; a failed task stops that host only, as in
Ansible. Blocks with rescue/always, handlers (run once at the end of the play, or at
`meta: flush_handlers`, only when a changed task notified them), loops, tags, roles'
variables and `connection: local` behave as in Ansible. The recap counts ok, changed,
failed, skipped, unreachable, rescued and ignored per host.
"""

from __future__ import annotations

import glob
import itertools
import logging
import math
import re
import shlex
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from django.db import connections
from jinja2 import TemplateError, UndefinedError

from clusters import conf
from clusters.drivers.base import DriverError, HostKeyMismatch, HostUnreachable
from clusters.drivers.local import LocalConnection
from clusters.drivers.ssh import ConnectionPool, SshTarget

from .modules import MODULES, TaskFailed, TaskResult
from .templating import FILTERS, TESTS, ansible_facts, compiled, evaluate, render_value  # noqa: F401 (importable from here)
from .templating import _filter_bool

logger = logging.getLogger("filrouge.recipes")

DEFAULT_FORKS = conf.SSH_FORKS


# ---- hosts and their session --------------------------------------------------------------


@dataclass
class HostSpec:
    name: str
    target: SshTarget
    variables: dict = field(default_factory=dict)
    groups: list = field(default_factory=list)
    server_id: int | None = None
    panel_public_key: str = ""


# The recap both engines write per host (rescued and ignored are kept on the outcome, as notes).
RECAP_FIELDS = ("ok", "changed", "failed", "skipped", "unreachable")


@dataclass
class HostOutcome:
    ok: int = 0
    changed: int = 0
    failed: int = 0
    skipped: int = 0
    unreachable: int = 0
    rescued: int = 0
    ignored: int = 0
    error: str = ""
    facts: dict | None = None
    duration: float = 0.0

    def as_dict(self):
        return {key: getattr(self, key) for key in RECAP_FIELDS}


class HostSession:
    """What modules see of a host: run, put, the current task's become, check mode, variables."""

    def __init__(self, spec, connection, recipe, check, variables, default_timeout):
        self.spec = spec
        self.name = spec.name
        self.connection = connection
        self.recipe = recipe
        self.check = check
        self.variables = variables
        self.become = False
        self.become_user = None
        self.environment = None
        self.search_dirs = ()
        self.facts = None
        self.default_timeout = default_timeout
        self.task_timeout = default_timeout
        self.panel_public_key = spec.panel_public_key

    def _environment(self, command):
        if not self.environment:
            return command
        exports = "".join(f"export {name}={shlex.quote(str(value))}; " for name, value in self.environment.items()
                          if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(name)))
        return exports + command

    def run(self, command, become=None, stdin=None, timeout=None):
        return self.connection.run(self._environment(command), become=self.become if become is None else become, stdin=stdin,
                                   timeout=timeout or self.task_timeout, become_user=self.become_user, shown=command)

    def put(self, path, data, mode=None, owner=None, group=None, validate=None):
        return self.connection.put_file(path, data, mode=mode, owner=owner, group=group, become=self.become, validate=validate,
                                        become_user=self.become_user)

    def render_template(self, text, name):
        try:
            return compiled("text", text).render(**self.variables)
        except UndefinedError as exc:
            raise TaskFailed(f"template {name}: {exc.message}") from None
        except TemplateError as exc:
            line = getattr(exc, "lineno", None)
            raise TaskFailed(f"template {name}{f', line {line}' if line else ''}: {exc}") from None

    def lookup(self, name):
        try:
            return compiled("expression", name)(**self.variables)
        except TemplateError as exc:
            return f"(undefined: {exc})"


class Reporter:
    """Where a run writes: a JobContext in jobs (`line`, `progress`, `add_secret`)."""

    def __init__(self, ctx):
        self.ctx = ctx

    def line(self, text, host="", task="", outcome=""):
        self.ctx.line(text, host=host, task=task, outcome=outcome)

    def progress(self, done, total):
        self.ctx.progress(done, total)


@dataclass
class RunSummary:
    hosts: dict
    duration: float
    check: bool

    @property
    def failed_hosts(self):
        return sorted(name for name, outcome in self.hosts.items() if outcome.failed or outcome.unreachable)

    def recap(self):
        return {name: outcome.as_dict() for name, outcome in sorted(self.hosts.items())}

    def totals(self):
        totals = HostOutcome()
        for outcome in self.hosts.values():
            for key in RECAP_FIELDS:
                setattr(totals, key, getattr(totals, key) + getattr(outcome, key))
        return totals.as_dict()


def host_matches(pattern, spec):
    """Ansible-like host patterns: all, *, a group, a host, ~regex, separated by , or :; !x excludes, &x intersects."""
    if pattern is None:
        return True
    words = [word.strip() for word in re.split(r",|:(?![^\[]*\])", str(pattern)) if word.strip()]
    selected = False
    names = {spec.name, *spec.groups}
    for word in words:
        if word.startswith("!"):
            if _matches_word(word[1:], names):
                return False
        elif word.startswith("&"):
            if not _matches_word(word[1:], names):
                return False
        elif _matches_word(word, names):
            selected = True
    return selected


def _matches_word(word, names):
    if word in ("all", "*"):
        return True
    if word.startswith("~"):
        try:
            regex = re.compile(word[1:])
        except re.error:
            return False
        return any(regex.match(name) for name in names)
    if "*" in word or "?" in word:
        regex = re.compile("^" + re.escape(word).replace(r"\*", ".*").replace(r"\?", ".") + "$")
        return any(regex.match(name) for name in names)
    return word in names


def tags_selected(tags, only=None, skip=None):
    """Ansible's rules for --tags / --skip-tags, with its special tags always, never, tagged, untagged, all."""
    tags = set(tags) or {"untagged"}
    only = set(only or ()) or {"all"}
    skip = set(skip or ())
    run = False
    if "always" in tags:
        run = True
    elif "all" in only and "never" not in tags:
        run = True
    elif not tags.isdisjoint(only):
        run = True
    elif "tagged" in only and tags != {"untagged"} and "never" not in tags:
        run = True
    if run and skip:
        if "all" in skip:
            if "always" not in tags or "always" in skip:
                run = False
        elif not tags.isdisjoint(skip):
            run = False
        elif "tagged" in skip and tags != {"untagged"}:
            run = False
    return run


def batches(hosts, serial):
    """Hosts in `serial` batches (numbers, percentages, or a list of them whose last repeats)."""
    if not serial:
        return [hosts] if hosts else []
    result, index, step = [], 0, 0
    while index < len(hosts):
        spec = serial[min(step, len(serial) - 1)]
        size = max(1, math.ceil(len(hosts) * int(spec[:-1]) / 100)) if str(spec).endswith("%") else max(1, int(spec))
        result.append(hosts[index:index + size])
        index += size
        step += 1
    return result


def loop_items(kind, value, search_dirs):
    """The items of `loop` and of the native `with_*` forms, after templating."""
    if kind in ("loop", "list"):
        items = value
    elif kind == "items":
        items = []
        for item in value if isinstance(value, list) else [value]:
            items.extend(item if isinstance(item, list) else [item])
    elif kind == "flattened":
        from .templating import _flatten

        items = _flatten(value if isinstance(value, list) else [value])
    elif kind == "indexed_items":
        items = [[index, item] for index, item in enumerate(value)]
    elif kind == "dict":
        if not isinstance(value, dict):
            raise TaskFailed(f"with_dict expects a mapping, got {type(value).__name__}")
        items = [{"key": key, "value": item} for key, item in value.items()]
    elif kind in ("nested", "cartesian"):
        lists = [item if isinstance(item, list) else [item] for item in value]
        items = [list(combination) for combination in itertools.product(*lists)]
    elif kind == "together":
        lists = [item if isinstance(item, list) else [item] for item in value]
        items = [list(combination) for combination in itertools.zip_longest(*lists)]
    elif kind == "fileglob":
        items = []
        for pattern in value if isinstance(value, list) else [value]:
            folders = [Path(folder) for folder in search_dirs] or [Path(".")]
            for folder in folders:
                matched = sorted(glob.glob(str(folder / pattern)))
                if matched:
                    items.extend(path for path in matched if Path(path).is_file())
                    break
    elif kind == "sequence":
        items = _sequence(value)
    else:
        raise TaskFailed(f"with_{kind} is not native")
    if not isinstance(items, list):
        raise TaskFailed(f"loop must be a list, got {type(items).__name__}")
    return items


def _sequence(value):
    text = value if isinstance(value, str) else " ".join(f"{k}={v}" for k, v in dict(value).items())
    options = dict(word.split("=", 1) for word in text.split() if "=" in word)
    if "-" in text and not options:
        start, _, end = text.partition("-")
        options = {"start": start, "end": end}
    start = int(options.get("start", 1))
    stride = int(options.get("stride", 1))
    end = int(options["end"]) if "end" in options else start + (int(options.get("count", 0)) - 1) * stride
    fmt = options.get("format", "%d")
    return [fmt % number for number in range(start, end + (1 if stride > 0 else -1), stride)]


@dataclass
class _HostState:
    """What a host carries from one play to the next: its connections, registered variables and facts."""

    connection: object = None
    local: LocalConnection | None = None
    runtime: dict = field(default_factory=dict)
    alive: bool = True
    plays_left: int = 0
    started: float = 0.0
    reported: bool = False


class _EndHost(Exception):
    pass


class RecipeRun:
    def __init__(self, recipe, hosts, reporter, check=False, forks=DEFAULT_FORKS, extra_vars=None, command_timeout=600.0, on_host_done=None,
                 tags=None, skip_tags=None):
        self.recipe = recipe
        self.hosts = hosts
        self.reporter = reporter
        self.check = check
        self.forks = max(1, min(int(forks or DEFAULT_FORKS), 200))
        self.extra_vars = extra_vars or {}
        self.command_timeout = command_timeout
        self.on_host_done = on_host_done
        self.only_tags = set(tags or ())
        self.skip_tags = set(skip_tags or ())
        self.pool = ConnectionPool()
        self.stop = self.pool.stop
        self.stop_after_batch = False
        self._done = 0
        self._lock = threading.Lock()
        self.total = sum(len(play.units) for play in recipe.plays for spec in hosts if host_matches(play.hosts, spec))
        self.groups_map = {}
        for spec in hosts:
            for group in spec.groups:
                self.groups_map.setdefault(group, []).append(spec.name)
        self.groups_map["all"] = [spec.name for spec in hosts]

    def _advance(self, count=1):
        if count <= 0:
            return
        with self._lock:
            self._done += count
            done = self._done
        self.reporter.progress(done, self.total)

    def run(self):
        """Run every play on its hosts (bounded pool); return a RunSummary. Cancel: the caller's JobCancelled stops all hosts."""
        started = time.monotonic()
        self.reporter.progress(0, self.total)
        outcomes = {spec.name: HostOutcome() for spec in self.hosts}
        states = {spec.name: _HostState(started=started) for spec in self.hosts}
        for spec in self.hosts:
            states[spec.name].plays_left = sum(1 for play in self.recipe.plays if host_matches(play.hosts, spec))
        for spec in self.hosts:  # a host no play selects is done at once (its record says so)
            if states[spec.name].plays_left == 0 and self.on_host_done is not None:
                states[spec.name].reported = True
                self.on_host_done(spec, outcomes[spec.name])
        executor = ThreadPoolExecutor(max_workers=self.forks, thread_name_prefix="recipe-host")
        futures = []
        try:
            for play in self.recipe.plays:
                matching = [spec for spec in self.hosts if host_matches(play.hosts, spec)]
                for spec in matching:
                    if not states[spec.name].alive:
                        self._advance(len(play.units))
                for batch in batches([spec for spec in matching if states[spec.name].alive], play.serial):
                    if self.stop.is_set():
                        break
                    futures = [executor.submit(self._host_play, spec, play, outcomes[spec.name], states[spec.name]) for spec in batch]
                    pending = set(futures)
                    while pending:
                        _done, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
                    for future in futures:
                        future.result()  # our own bugs in a host thread surface here
                    if play.serial and not any(states[spec.name].alive for spec in batch):
                        # As Ansible: when a whole serial batch failed, the rolling update stops there.
                        self.reporter.line("every host of a serial batch failed; the remaining hosts are left as they are")
                        self.stop_after_batch = True
                        break
                if self.stop_after_batch:
                    break
            for spec in self.hosts:  # hosts a stopped rolling update never reached still get their record
                state = states[spec.name]
                if not state.reported and self.on_host_done is not None and not self.stop.is_set():
                    state.reported = True
                    self.on_host_done(spec, outcomes[spec.name])
        except BaseException:
            # Cancelled (JobCancelled in this thread) or broken: stop every host now.
            self.stop.set()
            self.pool.close_all()
            executor.shutdown(wait=False, cancel_futures=True)
            wait([future for future in futures if future.running()], timeout=5)
            raise
        finally:
            self.pool.close_all()
        executor.shutdown(wait=True)
        return RunSummary(hosts=outcomes, duration=time.monotonic() - started, check=self.check)

    # ---- one host, one play -----------------------------------------------------------

    def _host_play(self, spec, play, outcome, state):
        units = len(play.units)
        done = [0]
        finished = False
        try:
            if self.stop.is_set():
                return
            if play.connection != "local" and state.connection is None:
                spec.target.command_timeout = self.command_timeout
                try:
                    state.connection = self.pool.open(spec.target)
                except HostKeyMismatch as exc:
                    outcome.unreachable, outcome.error = 1, str(exc)
                    self._say(str(exc), spec.name, "connect", "failed")
                    state.alive, finished = False, True
                    return
                except DriverError as exc:
                    outcome.unreachable, outcome.error = 1, str(exc)
                    self._say(f"unreachable: {exc}", spec.name, "connect", "failed")
                    state.alive, finished = False, True
                    return
            variables = self._variables(spec, play, state)
            if play.remote_user and play.remote_user != spec.target.user and play.connection != "local":
                self._say(f"remote_user {play.remote_user} of the play: the server's own SSH user {spec.target.user} is used "
                          "(as ansible_user outranks remote_user in Ansible)", spec.name, play.name or "play")
            for prompt in play.vars_prompt:
                if prompt["name"] in variables:
                    continue
                if prompt["default"] is None:
                    outcome.failed += 1
                    outcome.error = f"{spec.name}: vars_prompt {prompt['name']} has no default; give it as an extra variable"
                    self._say(outcome.error, spec.name, play.name or "play", "failed")
                    state.alive, finished = False, True
                    return
                variables[prompt["name"]] = prompt["default"]
            session = HostSession(spec, state.connection if play.connection != "local" else self._local(state), self.recipe, self.check,
                                  variables, self.command_timeout)
            if play.gather_facts and "ansible_facts" not in state.runtime:
                if not self._gather_facts(session, outcome, state, play.gather_args):
                    state.alive, finished = False, True
                    return
                session.variables.update(state.runtime)
            notified = []

            def counted():
                done[0] += 1
                self._advance()

            status = self._run_list(session, play.tasks, play, outcome, notified, state, on_top=counted)
            if status in ("ok", "ended") and notified:
                status = self._flush(session, play, outcome, notified, state)
            if status in ("failed", "unreachable"):
                state.alive, finished = False, True
        except _EndHost:
            pass
        except Exception as exc:  # our bug on one host: say so there, keep the other hosts going
            logger.exception("Recipe run on %s raised", spec.name)
            outcome.failed += 1
            outcome.error = f"internal error ({type(exc).__name__}: {exc}); the panel's logs have the details"
            self._say(outcome.error, spec.name, "", "failed")
            state.alive, finished = False, True
        finally:
            if not self.stop.is_set():
                self._advance(units - done[0])
            state.plays_left -= 1
            if state.runtime.get("_facts_raw") is not None:
                outcome.facts = state.runtime["_facts_raw"]
            if (finished or state.plays_left <= 0) and not state.reported:
                state.reported = True
                outcome.duration = time.monotonic() - state.started
                if self.on_host_done is not None and not self.stop.is_set():
                    try:
                        self.on_host_done(spec, outcome)
                    except Exception as exc:  # recording must not take the other hosts down
                        self._say(f"could not record the result: {exc}", spec.name, "", "failed")
            connections.close_all()  # this thread's database connection, if a callback (host-key pinning) opened one

    def _local(self, state):
        if state.local is None:
            state.local = LocalConnection(stop=self.stop)
        return state.local

    def _variables(self, spec, play, state):
        variables = {
            "inventory_hostname": spec.name, "inventory_hostname_short": spec.name.split(".")[0],
            "ansible_host": spec.target.address, "ansible_port": spec.target.port, "ansible_user": spec.target.user,
            "group_names": sorted(group for group in spec.groups if group != "all"), "groups": self.groups_map,
            "ansible_check_mode": self.check, "panel_public_key": spec.panel_public_key,
            "play_hosts": [other.name for other in self.hosts if host_matches(play.hosts, other)],
            "omit": "__omit_place_holder__", "ansible_run_tags": sorted(self.only_tags or {"all"}),
            "ansible_skip_tags": sorted(self.skip_tags),
        }
        variables["ansible_play_hosts"] = variables["ansible_play_batch"] = variables["play_hosts"]
        variables.update(spec.variables)
        group_vars = self.recipe.group_vars
        for group in ["all", *spec.groups]:
            if group in group_vars:
                variables.update(self._render_vars(group_vars[group], variables))
        if spec.name in self.recipe.host_vars:
            variables.update(self._render_vars(self.recipe.host_vars[spec.name], variables))
        variables.update(self._render_vars(play.vars, {**variables, **self.extra_vars}))
        variables.update(state.runtime)
        variables.update(self.extra_vars)
        return variables

    @staticmethod
    def _render_vars(values, variables):
        rendered = {}
        for key, value in values.items():
            try:
                rendered[key] = render_value(value, {**variables, **rendered})
            except (TemplateError, TypeError, ValueError):
                rendered[key] = value
        return rendered

    def _say(self, text, host, task, outcome=""):
        if not self.stop.is_set():
            self.reporter.line(text, host=host, task=task, outcome=outcome)

    def _gather_facts(self, session, outcome, state, args=None):
        try:
            result = MODULES["setup"].run(session, dict(args or {}))
        except (TaskFailed, DriverError) as exc:
            outcome.failed += 1
            outcome.error = f"{session.name}: gather facts: {exc}"
            self._say(str(exc), session.name, "gather facts", "failed")
            return False
        outcome.ok += 1
        self._store_facts(session, state)
        self._say(result.message, session.name, "gather facts", "ok")
        return True

    @staticmethod
    def _store_facts(session, state):
        facts = session.facts or {}
        named = ansible_facts(facts)
        state.runtime["_facts_raw"] = facts
        state.runtime["ansible_facts"] = {**facts, **named}
        state.runtime.update({f"ansible_{key}": value for key, value in named.items()})

    # ---- task lists, blocks, handlers --------------------------------------------------

    def _run_list(self, session, tasks, play, outcome, notified, state, on_top=None):
        """Run tasks in order; return ok, failed, unreachable or ended (meta: end_host)."""
        for task in tasks:
            if self.stop.is_set():
                return "failed"
            if task.is_block:
                status = self._block(session, task, play, outcome, notified, state)
            elif task.module == "meta":
                status = self._meta(session, task, play, outcome, notified, state)
            elif not tags_selected(task.tags, self.only_tags, self.skip_tags):
                status = "ok"
            else:
                status = self._task(session, task, play, outcome, notified, state)
            if on_top is not None and not (task.module == "meta" and task.line == 0):
                on_top()
            if status in ("failed", "unreachable", "ended"):
                return status
        return "ok"

    def _block(self, session, task, play, outcome, notified, state):
        failed_before = outcome.failed
        status = self._run_list(session, task.block, play, outcome, notified, state)
        if status == "failed" and task.rescue:
            outcome.failed = failed_before
            outcome.rescued += 1
            outcome.error = ""
            status = self._run_list(session, task.rescue, play, outcome, notified, state)
        if task.always and status != "unreachable":
            after = self._run_list(session, task.always, play, outcome, notified, state)
            if after != "ok":
                status = after
        return status

    def _meta(self, session, task, play, outcome, notified, state):
        action = task.args.get("_raw_params")
        if task.when and not self._condition(task.when, {**session.variables, **state.runtime}):
            return "ok"
        if action == "flush_handlers":
            return self._flush(session, play, outcome, notified, state)
        if action == "end_host":
            self._say("end_host: no more tasks for this host in this play", session.name, task.label, "ok")
            return "ended"
        return "ok"

    def _condition(self, condition, variables):
        try:
            return evaluate(condition, variables)
        except (TemplateError, TypeError, ValueError):
            return False

    def _flush(self, session, play, outcome, notified, state):
        """Run the notified handlers, in the order they are written, once each."""
        if not notified:
            return "ok"
        pending = list(notified)
        notified.clear()
        for handler in play.handlers:
            names = {handler.name, *handler.listen}
            if handler.role is not None:
                names.add(f"{handler.role.name} : {handler.name}")
            if names.isdisjoint(pending):
                continue
            if self.stop.is_set():
                return "failed"
            status = self._task(session, handler, play, outcome, notified, state)
            if status in ("failed", "unreachable"):
                return status
        return "ok"

    # ---- one task -------------------------------------------------------------------------

    def _scope(self, session, task, state):
        """The variables a task sees: role defaults < host and play vars < role vars < task vars < registered < extra vars."""
        base = session.variables
        if task.role is not None:
            cache = state.runtime.setdefault("_role_cache", {})
            key = (id(task.role), id(base))
            if key not in cache:
                defaults = self._render_vars(task.role.defaults, {**task.role.defaults, **base})
                role_vars = self._render_vars(task.role.vars, {**defaults, **base})
                cache.clear()
                cache[key] = (defaults, role_vars)
            defaults, role_vars = cache[key]
            scope = {**defaults, **base, **role_vars, "role_name": task.role.name, "role_path": str(task.role.path)}
        else:
            scope = dict(base)
        if task.vars:
            scope.update(self._render_vars(task.vars, scope))
        scope.update({key: value for key, value in state.runtime.items() if not key.startswith("_")})
        scope.update(self.extra_vars)
        return scope

    def _task(self, session, task, play, outcome, notified, state):
        """Run one task (all its loop items) on one host; report it; return its status."""
        base_vars = self._scope(session, task, state)
        if task.loop is not None:
            try:
                items = loop_items(task.loop_kind or "loop", render_value(task.loop, base_vars), task.search_dirs)
            except UndefinedError as exc:
                if task.when and not self._condition(task.when, base_vars):
                    return self._finish(session, task, outcome, TaskResult("skipped", "condition is false"), notified, state)
                return self._finish(session, task, outcome, TaskResult("failed", f"line {task.line}: {exc.message}"), notified, state)
            except (TemplateError, TaskFailed, TypeError, ValueError) as exc:
                return self._finish(session, task, outcome, TaskResult("failed", f"line {task.line}: {exc}"), notified, state)
        else:
            items = [None]
        results = []
        for index, item in enumerate(items):
            variables = base_vars
            if task.loop is not None:
                variables = {**base_vars, task.loop_var: item, "ansible_loop_var": task.loop_var}
                if task.index_var:
                    variables[task.index_var] = index
            results.append(self._one(session, task, play, variables, state))
            if results[-1].status == "unreachable":
                break
        if task.loop is None:
            result = results[0]
        elif not results:
            result = TaskResult("skipped", "no items to loop over", data={"results": [], "skipped": True})
        else:
            statuses = [item.status for item in results]
            status = next((s for s in ("unreachable", "failed", "changed", "ok") if s in statuses), "skipped")
            result = TaskResult(status, "\n".join(f"item {index + 1}: {item.status}: {item.message}" for index, item in enumerate(results)),
                                diff="\n".join(item.diff for item in results if item.diff),
                                data={"results": [{**item.data, "item": items[index], "changed": item.status == "changed",
                                                   "failed": item.status == "failed", "skipped": item.status == "skipped"}
                                                  for index, item in enumerate(results)], "changed": status == "changed"})
            for item in results:
                facts = item.data.get("_set_facts")
                if facts:
                    state.runtime.update(facts)
        if task.register:
            data = {key: value for key, value in result.data.items() if not key.startswith("_")}
            data.update(changed=result.status == "changed", failed=result.status in ("failed", "unreachable"),
                        skipped=result.status == "skipped", msg=result.message)
            state.runtime[task.register] = data
            session.variables[task.register] = data
        return self._finish(session, task, outcome, result, notified, state)

    def _one(self, session, task, play, variables, state):
        if task.module not in MODULES:
            return TaskResult("failed", f"line {task.line}: module {task.module} is not native")
        module = MODULES[task.module]
        try:
            if task.when and not evaluate(task.when, variables):
                return TaskResult("skipped", "condition is false")
            rendered = render_value(task.args, variables)
            if isinstance(rendered, dict):
                rendered = {key: value for key, value in rendered.items() if value != "__omit_place_holder__"}
            args = module.typed(rendered)
        except UndefinedError as exc:
            return TaskResult("failed", f"line {task.line}: {exc.message}")
        except (TemplateError, TaskFailed, ValueError, TypeError) as exc:
            return TaskResult("failed", f"line {task.line}: {exc}")
        host_become = variables.get("ansible_become", False)
        session.become = task.become if task.become is not None else (play.become or _filter_bool(host_become))
        session.become_user = task.become_user or play.become_user or variables.get("ansible_become_user") or None
        session.environment = None
        if task.environment:
            try:
                environment = render_value(task.environment, variables)
                session.environment = environment if isinstance(environment, dict) else None
            except TemplateError as exc:
                return TaskResult("failed", f"line {task.line}: environment: {exc}")
        session.task_timeout = task.timeout or self.command_timeout
        session.variables = variables
        session.search_dirs = task.search_dirs
        session.check = task.check_mode if task.check_mode is not None else self.check
        if task.local and session.connection is not state.local:
            saved, session.connection = session.connection, self._local(state)
        else:
            saved = None
        attempts = 0
        try:
            while True:
                attempts += 1
                result = self._attempt(session, module, args)
                if result.status == "unreachable":
                    return result
                result = self._conditions(task, result, variables)
                if task.until is None or result.status == "skipped":
                    break
                scope = {**variables, **({task.register: self._registered(result)} if task.register else {})}
                try:
                    done = evaluate(task.until, scope)
                except TemplateError:
                    done = False
                if done:
                    break
                if attempts >= max(1, task.retries):
                    result = TaskResult("failed", f"{result.message} (still not done after {attempts} attempts)".strip(), result.diff,
                                        result.data)
                    break
                if self.stop.wait(max(0.0, task.delay)):
                    break
            result.data["attempts"] = attempts
        finally:
            session.become = False
            session.become_user = None
            session.environment = None
            if saved is not None:
                session.connection = saved
        if module.name == "setup" and result.status == "ok":
            self._store_facts(session, state)
        if module.name == "set_fact" and result.status == "ok" and task.loop is None:
            state.runtime.update(result.data.get("_set_facts") or {})
        if result.status == "changed" and session.check:
            result.message = f"would change: {result.message}"
        return result

    @staticmethod
    def _registered(result):
        return {**{key: value for key, value in result.data.items() if not key.startswith("_")},
                "changed": result.status == "changed", "failed": result.status == "failed", "skipped": result.status == "skipped"}

    def _attempt(self, session, module, args):
        try:
            return module.run(session, args)
        except TaskFailed as exc:
            return TaskResult("failed", str(exc))
        except HostUnreachable as exc:
            return TaskResult("unreachable", str(exc))
        except DriverError as exc:
            return TaskResult("failed", str(exc))

    def _conditions(self, task, result, variables):
        if task.changed_when is None and task.failed_when is None:
            return result
        registered = self._registered(result)
        scope = {**variables, **({task.register: registered} if task.register else {}), "result": registered}
        try:
            if task.failed_when is not None and result.status != "skipped":
                failed = evaluate(task.failed_when, scope)
                if failed and result.status != "failed":
                    result = TaskResult("failed", result.message or "failed_when is true", result.diff, result.data)
                elif not failed and result.status == "failed":
                    result = TaskResult("ok", result.message, result.diff, result.data)
            if task.changed_when is not None and result.status in ("ok", "changed"):
                changed = evaluate(task.changed_when, scope)
                result = TaskResult("changed" if changed else "ok", result.message, result.diff if changed else "", result.data)
        except TemplateError as exc:
            result = TaskResult("failed", f"line {task.line}: cannot evaluate changed_when/failed_when: {exc}")
        return result

    def _finish(self, session, task, outcome, result, notified, state=None):
        status = result.status
        if status == "failed" and task.ignore_errors:
            self._say(f"{result.message} (ignored)", session.name, task.label, "failed")
            outcome.ok += 1
            outcome.ignored += 1
            return "ok"
        if status == "unreachable":
            outcome.unreachable = 1
            outcome.error = result.message
            self._say(f"unreachable: {result.message}", session.name, task.label, "failed")
            return status
        setattr(outcome, status, getattr(outcome, status) + 1)
        if status == "failed":
            outcome.error = f"{session.name}: {task.label}: {result.message}"
        message = "(output hidden: no_log)" if task.no_log else result.message
        if result.diff and not task.no_log and status == "changed":
            message = f"{message}\n{result.diff}"
        # One line carries the outcome (so outcomes can be counted per host); details follow as plain lines.
        first, _, details = message.partition("\n")
        self._say(first, session.name, task.label, status)
        if details:
            self._say(details, session.name, task.label)
        if status == "changed":
            notified.extend(name for name in task.notify if name not in notified)
        return status
