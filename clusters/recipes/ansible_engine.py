"""The second engine: a playbook the native engine cannot run goes through ansible-runner.

Same job, same hosts, same log: the inventory is written from the panel's servers,
groups and variables; credentials go to files only the job can read (a private key in a
0600 file, passwords in a 0600 extra-vars file, never on a command line); host keys are
the panel's pinned keys in a known_hosts file with StrictHostKeyChecking=yes (a host
never contacted before is pinned first by our own SSH driver, as the native engine
does, so no key is ever added blindly). ansible-runner's events become job lines
(host, task, outcome, text) and its stats the same per-host recap as the native engine.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from django.db import connections

from clusters.drivers.base import DriverError, HostKeyMismatch
from clusters.drivers.ssh import SshConnection

from . import ansible_compat
from .engine import HostOutcome, RunSummary

logger = logging.getLogger("filrouge.recipes")

OUTCOME_EVENTS = {
    "runner_on_ok": "ok", "runner_on_failed": "failed", "runner_on_skipped": "skipped", "runner_on_unreachable": "unreachable",
}
ITEM_EVENTS = {"runner_item_on_ok": "ok", "runner_item_on_failed": "failed", "runner_item_on_skipped": "skipped"}


class AnsibleRunnerMissing(DriverError):
    """ansible-runner or ansible-core is not installed where the job runs."""


def _known_name(address, port):
    return address if int(port) == 22 else f"[{address}]:{port}"


def _message(result, changed):
    """One line for a task's result: its msg, else the end of its output, else ok/changed."""
    if not isinstance(result, dict):
        return "done"
    for key in ("msg", "skip_reason", "reason"):
        value = result.get(key)
        if value:
            return str(value) if not isinstance(value, (list, dict)) else json.dumps(value)
    for key in ("stdout", "stderr"):
        value = result.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[-2000:]
    if "results" in result:
        return f"{len(result['results'])} item(s)"
    if result.get("elapsed") is not None:
        return f"done after {result['elapsed']} s"
    return "done"


class AnsibleRunnerRun:
    """One playbook run through ansible-runner for a recipe-run job; `run()` returns a RunSummary like RecipeRun's."""

    def __init__(self, recipe, specs, servers, reporter, check=False, forks=20, extra_vars=None, on_host_done=None, tags=None,
                 skip_tags=None, connect_timeout=10, group_ancestry=None):
        self.recipe = recipe
        self.specs = specs
        self.servers = {server.name: server for server in servers}
        self.reporter = reporter
        self.check = check
        self.forks = forks
        self.extra_vars = extra_vars or {}
        self.on_host_done = on_host_done
        self.tags = list(tags or ())
        self.skip_tags = list(skip_tags or ())
        self.connect_timeout = connect_timeout
        # ({group id: [ancestor ids]}, {group id: Group}) of the inventory (clusters' targets module)
        self.group_ancestry = group_ancestry
        self.cancel = threading.Event()
        self.outcomes = {spec.name: HostOutcome() for spec in specs}
        self.started = {}
        self.progress_total = max(1, recipe.task_count * len(specs))
        self._done = 0
        self._lock = threading.Lock()

    # ---- the files ansible-runner reads -----------------------------------------------------

    def _pin_unpinned(self):
        """Hosts never contacted have no pinned key yet: our driver pins it (first contact), as the native engine would."""
        missing = [spec for spec in self.specs if not spec.target.pinned_host_key
                   or (spec.target.jump is not None and not spec.target.jump.pinned_host_key)]
        unreachable = {}

        def pin(spec):
            try:
                with SshConnection(spec.target).connect():
                    pass
            except HostKeyMismatch as exc:
                unreachable[spec.name] = str(exc)
            except DriverError as exc:
                unreachable[spec.name] = f"unreachable: {exc}"
            finally:
                connections.close_all()  # the pinning callback wrote from this thread

        if missing:
            with ThreadPoolExecutor(max_workers=min(len(missing), self.forks)) as pool:
                list(pool.map(pin, missing))
        return unreachable

    def _write_files(self, folder, skip):
        """inventory.json, known_hosts, key files and the secret extra-vars file; returns (inventory, extravars file)."""
        keys = folder / "keys"
        keys.mkdir(mode=0o700)
        known_hosts = folder / "known_hosts"
        secrets = {"filrouge_ssh_passwords": {}, "filrouge_become_passwords": {}}
        hosts = {}
        known_lines = []
        passphrases = {}

        def key_file(target, name):
            path = keys / name
            path.write_text(target.private_key.strip() + "\n")
            path.chmod(0o600)
            if target.passphrase:
                passphrases[str(path)] = target.passphrase
            return path

        for index, spec in enumerate(self.specs):
            if spec.name in skip:
                continue
            target = spec.target
            known_lines.append(f"{_known_name(target.address, target.port)} {' '.join(target.pinned_host_key.split()[:2])}")
            host = {"ansible_host": target.address, "ansible_port": target.port, "ansible_user": target.user}
            common = [f"-o UserKnownHostsFile={shlex.quote(str(known_hosts))}", "-o StrictHostKeyChecking=yes", "-o IdentitiesOnly=yes"]
            if target.private_key:
                host["ansible_ssh_private_key_file"] = str(key_file(target, f"host{index}"))
                common.append("-o PasswordAuthentication=no")
            elif target.password:
                host["ansible_password"] = "{{ filrouge_ssh_passwords[inventory_hostname] }}"
                secrets["filrouge_ssh_passwords"][spec.name] = target.password
            if target.become_password:
                host["ansible_become_password"] = "{{ filrouge_become_passwords[inventory_hostname] }}"
                secrets["filrouge_become_passwords"][spec.name] = target.become_password
            jump = target.jump
            if jump is not None:
                known_lines.append(f"{_known_name(jump.address, jump.port)} {' '.join(jump.pinned_host_key.split()[:2])}")
                if jump.jump is not None or not jump.private_key:
                    raise DriverError(f"{spec.name}: ansible-runner reaches a host through one jump host that logs in with a key; "
                                      "this one has a chain of jump hosts or a password.")
                jump_key = key_file(jump, f"jump{index}")
                proxy = (f"ssh -i {shlex.quote(str(jump_key))} -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes "
                         f"-o UserKnownHostsFile={shlex.quote(str(known_hosts))} -o BatchMode=yes -p {jump.port} "
                         f"-W %h:%p {shlex.quote(jump.user)}@{shlex.quote(jump.address)}")
                common.append(f"-o ProxyCommand={shlex.quote(proxy)}")
            host["ansible_ssh_common_args"] = " ".join(common)
            hosts[spec.name] = host
        known_hosts.write_text("\n".join(known_lines) + "\n")
        inventory = self._inventory(hosts)
        inventory_path = folder / "inventory.json"
        inventory_path.write_text(json.dumps(inventory, indent=1))
        extravars = folder / "extravars.json"
        extravars.write_text(json.dumps({**self.extra_vars, **secrets}))
        extravars.chmod(0o600)
        return inventory_path, extravars, passphrases

    def _inventory(self, hosts):
        """The panel's groups (with their variables and children) and servers (with theirs), as Ansible's YAML/JSON inventory."""
        ancestry, groups = self.group_ancestry()
        wanted = set()
        members = {}
        for name, server in self.servers.items():
            if name not in hosts:
                continue
            for group in server.groups.all():
                wanted.add(group.pk)
                wanted.update(ancestry.get(group.pk, []))
                members.setdefault(group.pk, []).append(name)
        children = {}
        from clusters.models import Group

        for parent_id, child_id in Group.children.through.objects.filter(from_group_id__in=wanted, to_group_id__in=wanted).values_list(
                "from_group_id", "to_group_id"):
            children.setdefault(parent_id, []).append(groups[child_id].name)
        tree = {"all": {"hosts": {}, "vars": {}, "children": {}}}
        for name, host in hosts.items():
            server = self.servers[name]
            own = dict(server.variables or {})
            if server.become:
                own.setdefault("ansible_become", True)
            tree["all"]["hosts"][name] = {**own, **host}
        for group_id in sorted(wanted, key=lambda gid: groups[gid].name):
            group = groups[group_id]
            if group.name == "all":
                tree["all"]["vars"].update(group.variables or {})
                continue
            entry = {"vars": dict(group.variables or {})}
            if members.get(group_id):
                entry["hosts"] = {name: {} for name in members[group_id]}
            if children.get(group_id):
                entry["children"] = {name: {} for name in children[group_id]}
            tree["all"]["children"][group.name] = entry
        return tree

    # ---- events -------------------------------------------------------------------------------

    def _say(self, text, host="", task="", outcome=""):
        if text is None:
            return
        self.reporter.line(str(text), host=host, task=task, outcome=outcome)

    def _event(self, event):
        try:
            self._handle(event)
        except Exception:  # a strange event must not stop the stream
            logger.exception("Could not read an ansible-runner event")
        return False  # not kept in runner's own artefacts: the job log is the record

    def _handle(self, event):
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        host = data.get("host") or ""
        task = (data.get("task") or "").strip()
        role = data.get("role")
        label = f"{role} : {task}" if role and task else task
        result = data.get("res") or {}
        if kind in OUTCOME_EVENTS:
            outcome = OUTCOME_EVENTS[kind]
            changed = bool(isinstance(result, dict) and result.get("changed"))
            if outcome == "ok" and changed:
                outcome = "changed"
            text = _message(result, changed)
            if data.get("ignore_errors") and outcome == "failed":
                text += " (ignored)"
            if outcome == "unreachable":
                text = f"unreachable: {text}"
                outcome = "failed"
            if isinstance(result, dict) and result.get("_ansible_no_log"):
                text = "(output hidden: no_log)"
            first, _, details = text.partition("\n")
            self._say(first, host, label, outcome)
            if details:
                self._say(details, host, label)
            if kind == "runner_on_failed" and not data.get("ignore_errors") and host in self.outcomes:
                self.outcomes[host].error = self.outcomes[host].error or f"{host}: {label}: {first}"
            if kind == "runner_on_unreachable" and host in self.outcomes:
                self.outcomes[host].error = first
            self._advance()
        elif kind in ITEM_EVENTS:
            item = result.get("_ansible_item_label", result.get("item")) if isinstance(result, dict) else None
            changed = bool(isinstance(result, dict) and result.get("changed"))
            status = "changed" if ITEM_EVENTS[kind] == "ok" and changed else ITEM_EVENTS[kind]
            self._say(f"item {json.dumps(item, default=str) if not isinstance(item, str) else item}: {status}: {_message(result, changed)}", host, label)
        elif kind == "playbook_on_stats":
            self._stats(data)
        elif kind in ("error", "warning", "deprecated") or (kind == "verbose" and "ERROR" in (event.get("stdout") or "")):
            text = (event.get("stdout") or "").strip()
            if text:
                self._say(text)

    def _advance(self):
        with self._lock:
            self._done += 1
            done = min(self._done, self.progress_total)
        self.reporter.progress(done, self.progress_total)

    def _stats(self, data):
        def count(key, host):
            return int((data.get(key) or {}).get(host, 0))

        for host, outcome in self.outcomes.items():
            if host in self.skipped:
                continue
            changed = count("changed", host)
            outcome.changed = changed
            outcome.ok = max(0, count("ok", host) - changed)
            outcome.failed = count("failures", host)
            outcome.unreachable = 1 if count("dark", host) else 0
            outcome.skipped = count("skipped", host)
            outcome.rescued = count("rescued", host)
            outcome.ignored = count("ignored", host)
        self.stats_seen = True

    # ---- the run ---------------------------------------------------------------------------------

    def run(self):
        try:
            import ansible_runner
        except ImportError:
            raise AnsibleRunnerMissing("this playbook needs ansible-runner, which is not installed where the job runs "
                                       "(pip install the panel's dependencies).") from None
        started = time.monotonic()
        self.stats_seen = False
        self.reporter.progress(0, self.progress_total)
        self.skipped = self._pin_unpinned()
        for name, message in self.skipped.items():
            outcome = self.outcomes[name]
            outcome.unreachable, outcome.error = 1, message
            self._say(message, name, "connect", "failed")
        folder = Path(tempfile.mkdtemp(prefix="filrouge-runner-"))
        folder.chmod(0o700)
        try:
            reachable = [spec for spec in self.specs if spec.name not in self.skipped]
            if reachable:
                self._run(ansible_runner, folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if self.on_host_done is not None:
            for spec in self.specs:
                outcome = self.outcomes[spec.name]
                outcome.duration = time.monotonic() - started
                try:
                    self.on_host_done(spec, outcome)
                except Exception as exc:  # recording must not take the others down
                    self._say(f"could not record the result: {exc}", spec.name, "", "failed")
        return RunSummary(hosts=self.outcomes, duration=time.monotonic() - started, check=self.check)

    def _run(self, ansible_runner, folder):
        inventory, extravars, passphrases = self._write_files(folder, self.skipped)
        if self.recipe.playbook_path is not None:
            project = Path(self.recipe.playbook_path).resolve().parent
            playbook = Path(self.recipe.playbook_path).name
        else:
            project = folder / "project"
            project.mkdir()
            if self.recipe.base_dir is not None:
                shutil.copytree(self.recipe.base_dir, project, dirs_exist_ok=True)
            playbook = "filrouge-playbook.yml"
            (project / playbook).write_text(self.recipe.playbook_text)
        control = folder / "cp"
        control.mkdir()
        bin_dir = str(Path(sys.executable).parent)
        envvars = {
            "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
            "ANSIBLE_HOST_KEY_CHECKING": "True", "ANSIBLE_PIPELINING": "True", "ANSIBLE_RETRY_FILES_ENABLED": "False",
            "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_PYTHON_INTERPRETER": "auto_silent",
            "ANSIBLE_SSH_ARGS": f"-o ControlMaster=auto -o ControlPersist=60s -o ControlPath={control}/%C",
            "ANSIBLE_TIMEOUT": str(int(self.connect_timeout)), "ANSIBLE_LOCAL_TEMP": str(folder / "tmp"),
            "ANSIBLE_HOME": str(folder / "home"), "ANSIBLE_SSH_RETRIES": "0", "ANSIBLE_DEPRECATION_WARNINGS": "False",
            "ANSIBLE_SYSTEM_WARNINGS": "False", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False",
            **ansible_compat.ansible_environment(),
        }
        cmdline = f"-e @{shlex.quote(str(extravars))}" + (" --check --diff" if self.check else "")
        passwords = {r"Enter passphrase for key '" + path.replace(".", r"\.") + r"':\s*?$": value for path, value in passphrases.items()}
        thread, runner = ansible_runner.run_async(
            private_data_dir=str(folder), project_dir=str(project), playbook=playbook, inventory=str(inventory),
            envvars=envvars, passwords=passwords, forks=self.forks, cmdline=cmdline, tags=",".join(self.tags) or None,
            skip_tags=",".join(self.skip_tags) or None, event_handler=self._event, cancel_callback=self.cancel.is_set,
            quiet=True, settings={"suppress_ansible_output": True}, ident="run",
        )
        try:
            while thread.is_alive():
                thread.join(0.25)
        except BaseException:
            self.cancel.set()  # cancelled: runner ends ansible-playbook, then we go on unwinding
            thread.join(15)
            raise
        if not self.stats_seen:
            tail = ""
            try:
                tail = "\n".join(line for line in runner.stdout.read().splitlines()[-15:] if line.strip())
            except Exception:
                pass
            self._say(tail or f"ansible-playbook ended with status {runner.status} (rc {runner.rc}) before any result")
            for spec in self.specs:
                if spec.name not in self.skipped:
                    outcome = self.outcomes[spec.name]
                    outcome.failed = max(outcome.failed, 1)
                    outcome.error = outcome.error or f"ansible-playbook stopped ({runner.status}, rc {runner.rc}): {tail.splitlines()[-1] if tail else ''}"
