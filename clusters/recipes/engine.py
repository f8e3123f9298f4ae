"""Running a recipe on many hosts at once: a bounded thread pool, one SSH connection per host.

Each host goes through the tasks on its own (a slow or failing host never holds up the
others); every task reports ok / changed / failed / skipped with its diff as a job line
tagged with the host and the task; a failed task stops that host only, as in Ansible.
The recap counts ok, changed, failed, skipped and unreachable per host.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import lru_cache

import yaml
from django.db import connections
from jinja2 import StrictUndefined, TemplateError, UndefinedError
from jinja2.nativetypes import NativeCodeGenerator, NativeTemplate, native_concat
from jinja2.sandbox import ImmutableSandboxedEnvironment

from clusters import conf
from clusters.drivers.base import DriverError, HostKeyMismatch, HostUnreachable
from clusters.drivers.ssh import ConnectionPool, SshTarget

from .modules import MODULES, TaskFailed, TaskResult, to_bool

logger = logging.getLogger("filrouge.recipes")

DEFAULT_FORKS = conf.SSH_FORKS


# ---- templating: Jinja2 in a sandbox (recipes come from users; the panel's process is not theirs) ----


def _test_changed(result):
    return bool(isinstance(result, dict) and result.get("changed"))


def _test_failed(result):
    return bool(isinstance(result, dict) and result.get("failed"))


def _test_skipped(result):
    return bool(isinstance(result, dict) and result.get("skipped"))


def _test_succeeded(result):
    return isinstance(result, dict) and not result.get("failed")


def _filter_bool(value):
    try:
        return to_bool(value)
    except TaskFailed:
        return bool(value)


def _mandatory(value):
    return value


FILTERS = {
    "bool": _filter_bool, "quote": lambda value: shlex.quote(str(value)), "to_json": json.dumps,
    "to_yaml": lambda value: yaml.safe_dump(value, default_flow_style=False), "to_nice_json": lambda value: json.dumps(value, indent=2),
    "basename": lambda value: os.path.basename(str(value)), "dirname": lambda value: os.path.dirname(str(value)),
    "regex_replace": lambda value, pattern, replacement="": re.sub(pattern, replacement, str(value)),
    "mandatory": _mandatory,
}
TESTS = {"changed": _test_changed, "failed": _test_failed, "skipped": _test_skipped, "succeeded": _test_succeeded,
         "success": _test_succeeded, "successful": _test_succeeded}


def _setup(env):
    env.filters.update(FILTERS)
    env.tests.update(TESTS)
    return env


class NativeSandbox(ImmutableSandboxedEnvironment):
    """Whole-value expressions keep their type ("{{ packages }}" stays a list), as in Ansible."""

    code_generator_class = NativeCodeGenerator
    concat = staticmethod(native_concat)
    template_class = NativeTemplate


VALUE_ENV = _setup(NativeSandbox(undefined=StrictUndefined, keep_trailing_newline=True))
TEXT_ENV = _setup(ImmutableSandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True, trim_blocks=True))


SINGLE_EXPRESSION = re.compile(r"\{\{((?!\}\}).)*\}\}", re.S)
STRING_ENV = _setup(ImmutableSandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True))


@lru_cache(maxsize=4096)
def compiled(kind, source):
    """Compiling costs about a millisecond; the same task runs on every host, so compile once."""
    if kind == "expression":
        return VALUE_ENV.compile_expression(source)
    return {"value": VALUE_ENV, "string": STRING_ENV, "text": TEXT_ENV}[kind].from_string(source)


def render_value(value, variables):
    if isinstance(value, str):
        if "{{" not in value and "{%" not in value:
            return value
        if SINGLE_EXPRESSION.fullmatch(value):  # "{{ packages }}" keeps its type (a list stays a list)
            return compiled("value", value).render(**variables)
        return compiled("string", value).render(**variables)
    if isinstance(value, list):
        return [render_value(item, variables) for item in value]
    if isinstance(value, dict):
        return {key: render_value(item, variables) for key, item in value.items()}
    return value


def evaluate(expression, variables):
    """A `when` / `changed_when` condition: a bare Jinja2 expression, or a list of them (all must hold)."""
    if isinstance(expression, bool):
        return expression
    if isinstance(expression, list):
        return all(evaluate(item, variables) for item in expression)
    text = str(expression).strip()
    if text.startswith("{{") and text.endswith("}}"):
        text = text[2:-2]
    return bool(compiled("expression", text)(**variables))


# ---- hosts and their session --------------------------------------------------------------


@dataclass
class HostSpec:
    name: str
    target: SshTarget
    variables: dict = field(default_factory=dict)
    groups: list = field(default_factory=list)
    server_id: int | None = None
    panel_public_key: str = ""


@dataclass
class HostOutcome:
    ok: int = 0
    changed: int = 0
    failed: int = 0
    skipped: int = 0
    unreachable: int = 0
    error: str = ""
    facts: dict | None = None
    duration: float = 0.0

    def as_dict(self):
        return {"ok": self.ok, "changed": self.changed, "failed": self.failed, "skipped": self.skipped, "unreachable": self.unreachable}


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
        self.facts = None
        self.default_timeout = default_timeout
        self.task_timeout = default_timeout
        self.panel_public_key = spec.panel_public_key

    def run(self, command, become=None, stdin=None, timeout=None):
        return self.connection.run(command, become=self.become if become is None else become, stdin=stdin, timeout=timeout or self.task_timeout)

    def put(self, path, data, mode=None, owner=None, group=None, validate=None):
        return self.connection.put_file(path, data, mode=mode, owner=owner, group=group, become=self.become, validate=validate)

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
            for key in ("ok", "changed", "failed", "skipped", "unreachable"):
                setattr(totals, key, getattr(totals, key) + getattr(outcome, key))
        return totals.as_dict()


def host_matches(pattern, spec):
    """Ansible-like host patterns: all, *, a group, a host, separated by , or :; !x excludes, &x intersects."""
    if pattern is None:
        return True
    words = [word.strip() for word in re.split(r"[,:]", str(pattern)) if word.strip()]
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
    if "*" in word:
        regex = re.compile("^" + re.escape(word).replace(r"\*", ".*") + "$")
        return any(regex.match(name) for name in names)
    return word in names


class RecipeRun:
    def __init__(self, recipe, hosts, reporter, check=False, forks=DEFAULT_FORKS, extra_vars=None, command_timeout=600.0, on_host_done=None):
        self.recipe = recipe
        self.hosts = hosts
        self.reporter = reporter
        self.check = check
        self.forks = max(1, min(int(forks or DEFAULT_FORKS), 200))
        self.extra_vars = extra_vars or {}
        self.command_timeout = command_timeout
        self.on_host_done = on_host_done
        self.pool = ConnectionPool()
        self.stop = self.pool.stop
        self._done = 0
        self._lock = threading.Lock()
        self.total = sum(len(play.tasks) for play in recipe.plays for spec in hosts if host_matches(play.hosts, spec))
        self.groups_map = {}
        for spec in hosts:
            for group in spec.groups:
                self.groups_map.setdefault(group, []).append(spec.name)
        self.groups_map["all"] = [spec.name for spec in hosts]

    def _advance(self, count=1):
        with self._lock:
            self._done += count
            done = self._done
        self.reporter.progress(done, self.total)

    def run(self):
        """Run on every host (bounded pool); return a RunSummary. Cancel: the caller's JobCancelled stops all hosts."""
        started = time.monotonic()
        self.reporter.progress(0, self.total)
        outcomes = {spec.name: HostOutcome() for spec in self.hosts}
        executor = ThreadPoolExecutor(max_workers=self.forks, thread_name_prefix="recipe-host")
        futures = {executor.submit(self._host, spec, outcomes[spec.name]): spec for spec in self.hosts}
        try:
            pending = set(futures)
            while pending:
                _done, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
            for future in futures:
                future.result()  # our own bugs in a host thread surface here
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

    # ---- one host -----------------------------------------------------------------------

    def _host(self, spec, outcome):
        started = time.monotonic()
        remaining = sum(len(play.tasks) for play in self.recipe.plays if host_matches(play.hosts, spec))
        try:
            plays = [play for play in self.recipe.plays if host_matches(play.hosts, spec)]
            if not plays or self.stop.is_set():
                return
            spec.target.command_timeout = self.command_timeout
            try:
                connection = self.pool.open(spec.target)
            except HostKeyMismatch as exc:
                outcome.unreachable, outcome.error = 1, str(exc)
                self._say(str(exc), spec.name, "connect", "failed")
                return
            except DriverError as exc:
                outcome.unreachable, outcome.error = 1, str(exc)
                self._say(f"unreachable: {exc}", spec.name, "connect", "failed")
                return
            for play in plays:
                variables = self._variables(spec, play)
                session = HostSession(spec, connection, self.recipe, self.check, variables, self.command_timeout)
                if play.gather_facts:
                    self._run_module_directly(session, "setup", outcome, play.gather_args)
                notified = []
                for task in play.tasks:
                    if self.stop.is_set():
                        return
                    status = self._task(session, task, play, outcome, notified)
                    remaining -= 1
                    self._advance()
                    if status in ("failed", "unreachable"):
                        return
                for handler in play.handlers:
                    if handler.name in notified or any(topic in notified for topic in handler.listen):
                        if self.stop.is_set():
                            return
                        if self._task(session, handler, play, outcome, []) in ("failed", "unreachable"):
                            return
                if session.facts is not None:
                    outcome.facts = session.facts
        except Exception as exc:  # our bug on one host: say so there, keep the other hosts going
            logger.exception("Recipe run on %s raised", spec.name)
            outcome.failed += 1
            outcome.error = f"internal error ({type(exc).__name__}: {exc}); the panel's logs have the details"
            self._say(outcome.error, spec.name, "", "failed")
        finally:
            if remaining > 0 and not self.stop.is_set():
                self._advance(remaining)
            outcome.duration = time.monotonic() - started
            if self.on_host_done is not None and not self.stop.is_set():
                try:
                    self.on_host_done(spec, outcome)
                except Exception as exc:  # recording must not take the other hosts down
                    self._say(f"could not record the result: {exc}", spec.name, "", "failed")
            connections.close_all()  # this thread's database connection, if a callback (host-key pinning) opened one

    def _variables(self, spec, play):
        variables = {
            "inventory_hostname": spec.name, "inventory_hostname_short": spec.name.split(".")[0],
            "ansible_host": spec.target.address, "ansible_port": spec.target.port, "ansible_user": spec.target.user,
            "group_names": sorted(spec.groups), "groups": self.groups_map, "ansible_check_mode": self.check,
            "panel_public_key": spec.panel_public_key,
        }
        variables.update(spec.variables)
        variables.update(self._render_vars(play.vars, variables))
        variables.update(self.extra_vars)
        return variables

    @staticmethod
    def _render_vars(values, variables):
        rendered = {}
        for key, value in values.items():
            try:
                rendered[key] = render_value(value, {**variables, **rendered})
            except TemplateError:
                rendered[key] = value
        return rendered

    def _say(self, text, host, task, outcome=""):
        if not self.stop.is_set():
            self.reporter.line(text, host=host, task=task, outcome=outcome)

    def _run_module_directly(self, session, module_name, outcome, args=None):
        try:
            result = MODULES[module_name].run(session, dict(args or {}))
        except (TaskFailed, DriverError) as exc:
            self._say(str(exc), session.name, "gather facts", "failed")
            return
        outcome.ok += 1
        session.variables["ansible_facts"] = session.facts
        self._say(result.message, session.name, "gather facts", "ok")

    def _task(self, session, task, play, outcome, notified):
        """Run one task (all its loop items) on one host; report it; return its status."""
        label = task.label
        base_vars = {**session.variables, **self._render_vars(task.vars, session.variables)}
        try:
            items = render_value(task.loop, base_vars) if task.loop is not None else [None]
            if not isinstance(items, list):
                raise TaskFailed(f"loop must be a list, got {type(items).__name__}")
        except (TemplateError, TaskFailed) as exc:
            return self._finish(session, task, outcome, TaskResult("failed", f"line {task.line}: {exc}"), notified)
        results = []
        for item in items:
            variables = {**base_vars, "item": item} if task.loop is not None else base_vars
            results.append(self._one(session, task, play, variables))
            if results[-1].status == "unreachable":
                break
        if len(results) == 1:
            result = results[0]
        else:
            statuses = [item.status for item in results]
            status = next((s for s in ("unreachable", "failed", "changed", "ok") if s in statuses), "skipped")
            result = TaskResult(status, "\n".join(f"item {index + 1}: {item.status}: {item.message}" for index, item in enumerate(results)),
                                diff="\n".join(item.diff for item in results if item.diff),
                                data={"results": [item.data for item in results], "changed": status == "changed"})
        if task.register:
            data = dict(result.data)
            data.update(changed=result.status == "changed", failed=result.status in ("failed", "unreachable"),
                        skipped=result.status == "skipped", msg=result.message)
            session.variables[task.register] = data
        return self._finish(session, task, outcome, result, notified)

    def _one(self, session, task, play, variables):
        module = MODULES[task.module]
        try:
            if task.when is not None and not evaluate(task.when, variables):
                return TaskResult("skipped", "condition is false")
            args = module.typed(render_value(task.args, variables))
        except UndefinedError as exc:
            return TaskResult("failed", f"line {task.line}: {exc.message}")
        except (TemplateError, TaskFailed, ValueError, TypeError) as exc:
            return TaskResult("failed", f"line {task.line}: {exc}")
        host_become = variables.get("ansible_become", False)
        session.become = task.become if task.become is not None else (play.become or _filter_bool(host_become))
        session.task_timeout = task.timeout or self.command_timeout
        session.variables = variables
        try:
            result = module.run(session, args)
        except TaskFailed as exc:
            result = TaskResult("failed", str(exc))
        except HostUnreachable as exc:
            return TaskResult("unreachable", str(exc))
        except DriverError as exc:
            result = TaskResult("failed", str(exc))
        finally:
            session.become = False
        if task.changed_when is not None or task.failed_when is not None:
            registered = {**result.data, "changed": result.status == "changed", "failed": result.status == "failed"}
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
        if result.status == "changed" and self.check:
            result.message = f"would change: {result.message}"
        return result

    def _finish(self, session, task, outcome, result, notified):
        status = result.status
        if status == "failed" and task.ignore_errors:
            self._say(f"{result.message} (ignored)", session.name, task.label, "failed")
            outcome.ok += 1
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
