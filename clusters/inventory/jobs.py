"""Inventory jobs: run a recipe or playbook on servers, gather facts, and the periodic probe."""

import contextlib
import dataclasses
import logging
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import metrics
from django.db import connections
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from panel.jobs.kinds import JobKind, register
from panel.jobs.periodic import every

from clusters import conf
from clusters.drivers.base import DriverError
from clusters.drivers.ssh import SshConnection, SshTarget, fingerprint, scan_host_keys
from clusters.inventory.facts import PROBE_COMMAND, parse_probe
from clusters.models import Server, ServerJob
from clusters.recipes import RecipeError, builtin_names, load_builtin, load_file, load_text
from clusters.recipes.ansible_engine import AnsibleRunnerRun
from clusters.recipes.engine import DEFAULT_FORKS, RecipeRun, Reporter, host_matches
from clusters.recipes.loader import Fallback, parse_recipe
from clusters.recipes.project import opened_project
from clusters.inventory.targets import build_target, group_ancestry, host_specs, servers_for_run

logger = logging.getLogger("filrouge.inventory")

FACTS_RECIPE = "- name: Gather facts\n  setup:\n"


def resolve_servers(user, ids=(), limit=""):
    """Servers named by id and/or an Ansible-like pattern of server and group names."""
    visible = Server.objects.visible_to(user) if user is not None else Server.objects.all()
    chosen = set(ids or [])
    if ids:
        found = set(visible.filter(pk__in=ids).values_list("pk", flat=True))
        missing = sorted(set(ids) - found)
        if missing:
            raise serializers.ValidationError({"servers": [f"No such server: {', '.join(map(str, missing))}."]})
    if limit and limit.strip():
        matched = _match_pattern(visible, limit)
        if not matched:
            raise serializers.ValidationError({"limit": [f"{limit!r} matches no server or group."]})
        chosen |= matched
    return sorted(chosen)


def _match_pattern(servers, pattern):
    """Resolve a pattern like "web,db01,!web03" over server names and group names (a group includes its children)."""
    ancestry, groups = group_ancestry()
    membership = {}
    for server_id, group_id in Server.groups.through.objects.filter(server__in=servers).values_list("server_id", "group_id"):
        names = membership.setdefault(server_id, set())
        names.add(groups[group_id].name)
        names.update(groups[ancestor].name for ancestor in ancestry.get(group_id, []))
    return {
        pk for pk, name in servers.values_list("pk", "name")
        if host_matches(pattern, SimpleNamespace(name=name, groups=membership.get(pk, set())))
    }


class TargetParams(serializers.Serializer):
    servers = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False, default=list,
                                    help_text=_("Server ids."))
    limit = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000,
                                  help_text=_("Server or group names, comma-separated (web,db01,!web03)."))

    def validate(self, data):
        data = super().validate(data)
        user = self.context.get("user")
        ids = resolve_servers(user if not self.context.get("cli") else None, data.get("servers"), data.get("limit"))
        if not ids:
            raise serializers.ValidationError({"servers": [_("Choose at least one server (servers or limit).")]})
        data["servers"] = ids
        return data


class RecipeRunParams(TargetParams):
    recipe = serializers.ChoiceField(choices=[], required=False, allow_blank=True, default="", help_text=_("A built-in recipe."))
    playbook = serializers.CharField(required=False, allow_blank=True, default="", max_length=200_000, trim_whitespace=False,
                                     style={"base_template": "textarea.html"}, help_text=_("Or a recipe / playbook as YAML."))
    path = serializers.CharField(required=False, allow_blank=True, default="",
                                 help_text=_("Command line only: a playbook file or a project folder on the panel's machine."))
    project = serializers.CharField(required=False, allow_blank=True, default="", max_length=4 * conf.PROJECT_ARCHIVE_MAX_BYTES // 3 + 8,
                                    trim_whitespace=False,
                                    help_text=_("Or a project: a .zip or .tar.gz of a playbook with its roles/, group_vars/ and files/, base64-encoded."))
    playbook_file = serializers.CharField(required=False, allow_blank=True, default="", max_length=500,
                                          help_text=_("Which playbook of the project or folder to run (default: site.yml, playbook.yml, main.yml or the only one)."))
    tags = serializers.ListField(child=serializers.CharField(max_length=200), required=False, default=list,
                                 help_text=_("Run only tasks with these tags (as ansible-playbook --tags)."))
    skip_tags = serializers.ListField(child=serializers.CharField(max_length=200), required=False, default=list,
                                      help_text=_("Skip tasks with these tags (as ansible-playbook --skip-tags)."))
    check = serializers.BooleanField(required=False, default=False, help_text=_("Dry run: report what would change, change nothing."))
    variables = serializers.DictField(required=False, default=dict, help_text=_("Extra variables (override recipe, group and host variables)."))
    forks = serializers.IntegerField(required=False, min_value=1, max_value=200, default=DEFAULT_FORKS, help_text=_("Hosts worked on at once."))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["recipe"].choices = [("", "")] + [(name, name) for name in builtin_names()]

    def validate(self, data):
        sources = [key for key in ("recipe", "playbook", "path", "project") if data.get(key)]
        if len(sources) != 1:
            raise serializers.ValidationError({"recipe": [_("Give exactly one of a built-in recipe, a playbook or a project.")]})
        if data.get("path") and not self.context.get("cli"):
            raise serializers.ValidationError({"path": [_("Recipe files on the panel's machine can only be run from the command line.")]})
        try:
            with opened_recipe(data):
                pass
        except RecipeError as exc:
            raise serializers.ValidationError({sources[0]: list(exc.problems)}) from None
        return super().validate(data)


def load_recipe(params):
    if params.get("recipe"):
        return load_builtin(params["recipe"])
    if params.get("path"):
        return load_file(params["path"], playbook=params.get("playbook_file") or "")
    return load_text(params["playbook"], source="playbook")


@contextlib.contextmanager
def opened_recipe(params):
    """The recipe a run's parameters name; an uploaded project is unpacked for as long as it is used."""
    if params.get("project"):
        with opened_project(params["project"], params.get("playbook_file") or "") as recipe:
            yield recipe
    else:
        yield load_recipe(params)


def _record_servers(job, ids):
    ServerJob.objects.bulk_create([ServerJob(server_id=pk, job_id=job.pk) for pk in ids], ignore_conflicts=True)


class HostResultWriter(threading.Thread):
    """Writes each host's outcome (server state, its recap) as soon as the host is done.

    One thread with one database connection, fed by the host threads: thirty hosts
    would otherwise open thirty connections at the same moment."""

    def __init__(self, job_id):
        super().__init__(name=f"job-{job_id}-results", daemon=True)
        self.job_id = job_id
        self.queue = queue.Queue()
        self.start()

    def put(self, server_id, outcome):
        self.queue.put((server_id, outcome))

    def close(self):
        self.queue.put(None)
        self.join(timeout=30)

    def run(self):
        try:
            while (item := self.queue.get()) is not None:
                try:
                    self.write(*item)
                except Exception:  # one row that cannot be written must not lose the others
                    logger.exception("Could not record the outcome of server %s in job %s", item[0], self.job_id)
        finally:
            connections.close_all()

    def write(self, server_id, outcome):
        now = timezone.now()
        fields = {}
        if outcome.unreachable:
            fields.update(reachable=False, probe_error=outcome.error[:2000], probed_at=now)
        else:
            fields.update(reachable=True, last_seen_at=now, probe_error="")
        if outcome.facts:
            facts = outcome.facts
            fields.update(facts=facts, facts_at=now)
            memory = facts.get("memory") or {}
            if memory.get("available_bytes") is not None:
                fields["memory_available_bytes"] = memory["available_bytes"]
            if facts.get("load"):
                fields["load_1m"] = facts["load"][0]
            if (facts.get("root_disk") or {}).get("free_bytes") is not None:
                fields["disk_free_bytes"] = facts["root_disk"]["free_bytes"]
        Server.objects.filter(pk=server_id).update(**fields)
        recap = {**outcome.as_dict(), "error": outcome.error[:2000], "duration": round(outcome.duration, 3)}
        ServerJob.objects.filter(server_id=server_id, job_id=self.job_id).update(recap=recap)


def run_on_servers(ctx, recipe, ids, check=False, forks=DEFAULT_FORKS, variables=None, tags=None, skip_tags=None):
    """Fan a recipe out over servers; write per-host lines and a recap; fail if any host failed.

    The native engine runs it when it can; otherwise ansible-runner does, in the same job
    (same lines, recap and per-host records). The first line says which and why."""
    _record_servers(ctx.job, ids)
    if conf.RECIPE_ENGINE == "ansible-runner" and recipe.engine == "native":
        recipe = dataclasses.replace(recipe, fallbacks=[Fallback("", 0, "FILROUGE_RECIPE_ENGINE asks for ansible-runner")])
    ctx.line(f"engine: {recipe.engine} ({recipe.engine_reason()})")
    servers = list(servers_for_run(ids))
    specs = host_specs(servers, add_secret=ctx.add_secret, user=ctx.user)
    ctx.line(f"{recipe.name or recipe.source}: {len(specs)} host(s), {recipe.task_count} task(s), {min(forks, len(specs))} at a time"
             + (", check mode (nothing is changed)" if check else "")
             + (f", tags {','.join(tags)}" if tags else "") + (f", skipping tags {','.join(skip_tags)}" if skip_tags else ""))
    by_id = {server.pk: server for server in servers}

    writer = HostResultWriter(ctx.job.pk)

    def on_host_done(spec, outcome):
        writer.put(spec.server_id, outcome)

    if recipe.engine == "native":
        run = RecipeRun(recipe, specs, Reporter(ctx), check=check, forks=forks, extra_vars=variables or {},
                        command_timeout=conf.SSH_COMMAND_TIMEOUT, on_host_done=on_host_done, tags=tags, skip_tags=skip_tags)
    else:
        run = AnsibleRunnerRun(recipe, specs, servers, Reporter(ctx), check=check, forks=forks, extra_vars=variables or {},
                               on_host_done=on_host_done, tags=tags, skip_tags=skip_tags, connect_timeout=conf.SSH_CONNECT_TIMEOUT,
                               group_ancestry=group_ancestry)
    try:
        summary = run.run()
    finally:
        writer.close()
    width = max((len(name) for name in summary.hosts), default=10)
    ctx.line("Recap:" + (" (check mode)" if check else ""))
    for name, counts in summary.recap().items():
        text = f"{name.ljust(width)}  ok={counts['ok']} changed={counts['changed']} unreachable={counts['unreachable']} failed={counts['failed']} skipped={counts['skipped']}"
        ctx.line(text, host=name, task="recap", outcome="failed" if counts["failed"] or counts["unreachable"] else "ok")
    result = {"engine": recipe.engine, "engine_reason": recipe.engine_reason(),
              "recap": summary.recap(), "totals": summary.totals(), "duration": round(summary.duration, 3), "check": check,
              "failed_hosts": summary.failed_hosts, "servers": {name: server.pk for server in by_id.values() for name in [server.name]}}
    failed = summary.failed_hosts
    if failed:
        shown = ", ".join(failed[:10]) + (f" and {len(failed) - 10} more" if len(failed) > 10 else "")
        first = summary.hosts[failed[0]].error
        ctx.fail(f"{len(failed)} of {len(summary.hosts)} host(s) failed or were unreachable: {shown}. First: {first}")
    return result


@register
class RecipeRunKind(JobKind):
    """Apply a built-in recipe or a simple playbook to servers, many at once."""

    name = "recipe-run"
    label = _("Run a recipe")
    description = _("Apply a recipe or a simple Ansible playbook to servers over SSH.")
    queue = "default"
    timeout = 3600
    Params = RecipeRunParams
    permission = "is_operator"
    target_model = Server  # started from the inventory pages, not the generic job form

    def run(self, ctx, servers, recipe="", playbook="", path="", check=False, variables=None, forks=DEFAULT_FORKS, limit="",
            project="", playbook_file="", tags=None, skip_tags=None):
        params = {"recipe": recipe, "playbook": playbook, "path": path, "project": project, "playbook_file": playbook_file}
        with opened_recipe(params) as loaded:
            return run_on_servers(ctx, loaded, servers, check=check, forks=forks, variables=variables, tags=tags, skip_tags=skip_tags)

    def describe(self, params):
        return params.get("recipe") or ("project" if params.get("project") else "playbook")


class FactsParams(TargetParams):
    forks = serializers.IntegerField(required=False, min_value=1, max_value=200, default=DEFAULT_FORKS)


@register
class ServerFactsKind(JobKind):
    """Gather OS, kernel, CPUs, memory, disks, addresses, uptime and Docker presence; store them."""

    name = "server-facts"
    label = _("Gather facts")
    description = _("Read OS, kernel, CPU, memory, disks, addresses, uptime and Docker from servers.")
    queue = "default"
    timeout = 900
    Params = FactsParams
    target_model = Server

    def run(self, ctx, servers, forks=DEFAULT_FORKS, limit=""):
        recipe = parse_recipe(FACTS_RECIPE, source="facts")
        recipe.name = "Gather facts"
        return run_on_servers(ctx, recipe, servers, forks=forks)


@register
class ScanHostKeysKind(JobKind):
    """Ask one server for the host keys it offers (no login) and show their fingerprints,
    so that an operator can compare them with the server's console and pin one."""

    name = "server-scan-host-keys"
    label = _("Scan host keys")
    description = _("Fetch the SSH host keys a server offers and show their fingerprints, to confirm and pin one.")
    queue = "default"
    timeout = 120
    permission = "is_operator"
    target_model = Server

    def run(self, ctx):
        server = Server.objects.select_related("jump_host", "jump_host__credential").get(pk=ctx.job.target_id)
        target = build_target(server, ctx.add_secret, ctx.user) if server.jump_host_id else SshTarget(
            name=server.name, address=server.address, port=server.port, user=server.user, connect_timeout=conf.SSH_CONNECT_TIMEOUT)
        keys = scan_host_keys(target, stop=ctx.cancelled)
        pinned = " ".join(server.pinned_host_key.split()[:2])
        rows = []
        for key in keys:
            state = "pinned" if key == pinned else ("differs from the pinned key" if pinned else "not pinned")
            ctx.ok(f"{key.split()[0]} {fingerprint(key)} ({state})", host=server.name, task="scan")
            rows.append({"key": key, "type": key.split()[0], "fingerprint": fingerprint(key), "pinned": key == pinned})
        if pinned and pinned not in keys:
            ctx.line(f"the pinned key {fingerprint(pinned)} was not offered: compare the fingerprints above with the server's console before pinning one",
                     host=server.name, task="scan", outcome="failed")
        return {"server": server.pk, "keys": rows, "pinned_fingerprint": fingerprint(pinned) if pinned else ""}


# ---- the periodic probe ----------------------------------------------------------------------


def probe_one(server):
    """Reachability, load, memory and root-disk free space of one server; saved at once."""
    now = timezone.now()
    try:
        target = build_target(server)
        target.connect_timeout = conf.SSH_PROBE_TIMEOUT
        target.command_timeout = conf.SSH_PROBE_TIMEOUT
        with SshConnection(target).connect() as connection:
            result = connection.run(PROBE_COMMAND, timeout=conf.SSH_PROBE_TIMEOUT)
        state = parse_probe(result.stdout)
        Server.objects.filter(pk=server.pk).update(reachable=True, last_seen_at=now, probed_at=now, probe_error="", **state)
        metrics.record_many(server_samples(server, True, state), at=now)
        return True
    except DriverError as exc:
        Server.objects.filter(pk=server.pk).update(reachable=False, probed_at=now, probe_error=str(exc)[:2000])
        metrics.record_many(server_samples(server, False, {}), at=now)
        return False
    except Exception as exc:  # a broken credential row must not stop the probe of the others
        logger.exception("Probe of %s failed", server.name)
        Server.objects.filter(pk=server.pk).update(reachable=False, probed_at=now, probe_error=f"internal error: {exc}"[:2000])
        return False
    finally:
        connections.close_all()


def server_samples(server, reachable, state):
    """The probe's figures as series: reachable (1/0), load, memory available, disk free and,
    when the facts know the root disk's size, the share of it in use."""
    labels = {"server": server.name}
    samples = [metrics.Sample("filrouge_server_reachable", 1 if reachable else 0, labels, obj=server)]
    for name, key in (("filrouge_server_load1", "load_1m"), ("filrouge_server_memory_available_bytes", "memory_available_bytes"), ("filrouge_server_disk_free_bytes", "disk_free_bytes")):
        if state.get(key) is not None:
            samples.append(metrics.Sample(name, state[key], labels, obj=server))
    root = next((disk for disk in (server.facts or {}).get("disks") or [] if disk.get("mount") == "/"), None)
    size = (root or {}).get("size_bytes")
    if size and state.get("disk_free_bytes") is not None:
        samples.append(metrics.Sample("filrouge_server_disk_used_ratio", 1 - state["disk_free_bytes"] / size, labels, obj=server))
    return samples


@every(conf.SSH_PROBE_INTERVAL, queue="low", timeout=600)
def probe_servers(ids=None):
    """Probe every server (or those ids) in a bounded pool: a slow host costs its own timeout only."""
    servers = Server.objects.select_related("credential", "jump_host", "jump_host__credential")
    if ids:
        servers = servers.filter(pk__in=ids)
    servers = list(servers)
    if not servers:
        return {"probed": 0, "reachable": 0}
    with ThreadPoolExecutor(max_workers=conf.SSH_PROBE_FORKS, thread_name_prefix="probe") as pool:
        results = list(pool.map(probe_one, servers))
    return {"probed": len(results), "reachable": sum(results)}
