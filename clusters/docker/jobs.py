"""Job kinds for Docker and Swarm clusters, and the periodic engine probe.

The probe makes one list call per kind of object (containers, images, volumes, networks,
disk usage; nodes, services and tasks on a Swarm), whatever the number of containers,
and keeps the result on `Cluster.observed` and, for the services deployed there, on
`Service.observed`, with the time it was taken.
"""

import logging
import time

import metrics
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from panel.jobs.errors import JobFailed
from panel.jobs.kinds import JobKind, register
from panel.jobs.periodic import every

from clusters.drivers import docker as driver
from clusters.models import Cluster
from clusters.signals import engine_observed

logger = logging.getLogger("filrouge.clusters")

ENGINE_KINDS = ("docker", "swarm")
PROBE_INTERVAL = 30


class EngineJob(JobKind):
    queue = "default"
    permission = "is_operator"
    target_model = Cluster

    def cluster(self, ctx):
        cluster = Cluster.objects.select_related("credential", "server", "server__credential").get(pk=ctx.job.target_id)
        if cluster.kind not in ENGINE_KINDS:
            raise JobFailed(f"{cluster} is a {cluster.get_kind_display()} cluster, not a Docker engine or Swarm.")
        return cluster


@register
class ConnectTest(EngineJob):
    """Reach the engine and report its version (or why it cannot be reached)."""

    name = "engine-connect-test"
    label = _("Engine connect test")
    timeout = 120

    def run(self, ctx):
        cluster = self.cluster(ctx)
        endpoint = cluster.endpoint or driver.DEFAULT_ENDPOINT
        ctx.line(f"connecting to {endpoint}", host=cluster.name, task="connect")
        try:
            with driver.engine(cluster, ctx) as connection:
                facts = driver.engine_version(connection)
        except JobFailed as exc:
            Cluster.objects.filter(pk=cluster.pk).update(reachable=False, observe_error=str(exc)[:2000])
            raise
        ctx.ok(f"Docker Engine {facts['version']} (API {facts['api_version']}, {facts['os']}/{facts['arch']}), swarm: {facts['swarm']}", host=cluster.name, task="connect")
        if cluster.kind == "swarm" and not facts["swarm_manager"]:
            raise JobFailed(f"{cluster} reaches an engine that is not a Swarm manager (swarm: {facts['swarm']}). Point it at a manager, or make it a 'Docker host' cluster.")
        Cluster.objects.filter(pk=cluster.pk).update(reachable=True, version=facts["version"], observe_error="")
        return facts


@register
class ProbeNow(EngineJob):
    """Refresh the observed state of one engine now (the same probe as the periodic one)."""

    name = "engine-probe"
    label = _("Engine probe")
    timeout = 300

    def run(self, ctx):
        cluster = self.cluster(ctx)
        try:
            summary = probe_cluster(cluster, ctx)
        except JobFailed:
            raise
        ctx.ok(
            f"{summary['containers']} containers, {summary['images']} images, {summary['volumes']} volumes, "
            f"{summary['networks']} networks in {summary['seconds']:.2f} s with {summary['calls']} API calls",
            host=cluster.name, task="probe",
        )
        return summary


class NodeParams(serializers.Serializer):
    node = serializers.CharField(max_length=100, help_text=_("Node id or hostname"))
    availability = serializers.ChoiceField(choices=["active", "pause", "drain"])
    wait_seconds = serializers.IntegerField(min_value=0, max_value=600, default=60, help_text=_("How long to watch tasks move off a drained node."))


@register
class NodeAvailability(EngineJob):
    """Drain, pause or activate a Swarm node; for a drain, watch its tasks move elsewhere."""

    name = "swarm-node-availability"
    label = _("Swarm node availability")
    timeout = 900
    Params = NodeParams

    def run(self, ctx, node, availability, wait_seconds):
        cluster = self.cluster(ctx)
        if cluster.kind != "swarm":
            raise JobFailed(f"{cluster} is not a Swarm cluster.")
        with driver.engine(cluster, ctx) as connection:
            with driver.docker_errors(f"the Swarm at {connection.description}"):
                nodes = connection.api.nodes()
            match = [n for n in nodes if n["ID"] == node or n["ID"].startswith(node) or (n.get("Description") or {}).get("Hostname") == node]
            if len(match) != 1:
                raise JobFailed(f"No single Swarm node matches {node!r}. Known: {', '.join((n.get('Description') or {}).get('Hostname', n['ID']) for n in nodes)}.")
            node_id, hostname = match[0]["ID"], (match[0].get("Description") or {}).get("Hostname", node)
            before = driver.node_tasks(connection, node_id)
            driver.set_node_availability(connection, node_id, availability)
            ctx.changed(f"availability set to {availability} ({len(before)} task(s) on it)", host=hostname, task="node")
            if availability == "drain":
                deadline = time.monotonic() + wait_seconds
                remaining = len(before)
                ctx.progress(0, max(1, len(before)))
                while remaining and time.monotonic() < deadline:
                    time.sleep(0.5)
                    current = [t for t in driver.node_tasks(connection, node_id) if (t.get("Status") or {}).get("State") == "running"]
                    if len(current) != remaining:
                        remaining = len(current)
                        ctx.line(f"{remaining} task(s) still running on {hostname}", host=hostname, task="drain")
                        ctx.progress(len(before) - remaining, max(1, len(before)))
                if remaining:
                    ctx.line(f"{remaining} task(s) still on {hostname} after {wait_seconds} s (single-node Swarm: nowhere else to go)", host=hostname, task="drain")
                else:
                    ctx.ok(f"no task runs on {hostname} any more", host=hostname, task="drain")
            probe_cluster(cluster, ctx, connection=connection)
        return {"node": hostname, "availability": availability}


def probe_cluster(cluster, ctx=None, connection=None):
    """Observe one engine and store the result on the cluster and its services."""
    started = time.perf_counter()
    try:
        swarm = cluster.kind == "swarm"
        if connection is None:
            with driver.engine(cluster, ctx) as opened:
                observed, calls, stats_calls = _observe(opened, swarm, cluster.observed)
        else:
            observed, calls, stats_calls = _observe(connection, swarm, cluster.observed)
    except JobFailed as exc:
        Cluster.objects.filter(pk=cluster.pk).update(reachable=False, observe_error=str(exc)[:2000], observed_at=timezone.now())
        raise
    seconds = time.perf_counter() - started
    now = timezone.now()
    observed["probe"] = {
        "calls": len(calls), "stats_calls": stats_calls, "seconds": round(seconds, 3), "at": now.isoformat(),
        "events_until": observed.pop("events_until", None),
    }
    Cluster.objects.filter(pk=cluster.pk).update(
        observed=observed, observed_at=now, reachable=True, version=observed["engine"]["version"], observe_error=""
    )
    metrics.record_many(container_samples(cluster, observed), at=now)
    engine_observed.send(sender=Cluster, cluster=cluster, observed=observed, now=now)
    return {
        "containers": len(observed["containers"]), "images": len(observed["images"]), "volumes": len(observed["volumes"]),
        "networks": len(observed["networks"]), "calls": len(calls), "stats_calls": stats_calls, "seconds": seconds,
    }


def _observe(connection, swarm, previous):
    """One round: the list calls, the restart count of each container (one events call), the
    stats calls. Returns (observed, list calls, stats calls)."""
    until = time.time()
    observed, calls = driver.observe_engine(connection, swarm=swarm, previous=previous)
    if add_container_restarts(connection, observed, previous, until):
        calls.append("events")
    stats_calls = add_container_stats(connection, observed, previous=previous)
    return observed, calls, stats_calls


def add_container_restarts(connection, observed, previous, until):
    """Put on each container's row how many times it restarted since the panel first saw it:
    the last round's count plus the starts the engine logged since then (a start of a container
    the last round did not know is its first start, not a restart). Returns whether it asked
    the engine (not on the first round: there is no "since" yet)."""
    previous = previous or {}
    since = (previous.get("probe") or {}).get("events_until")
    before = {row["id"]: row.get("restarts", 0) for row in previous.get("containers") or []}
    starts = driver.container_starts(connection, since, until) if since else {}
    for row in observed["containers"]:
        count = starts.get(row["id"], 0)
        if row["id"] not in before and count:
            count -= 1
        row["restarts"] = before.get(row["id"], 0) + count
    observed["events_until"] = until
    return bool(since)


def in_stats_scope(row):
    """Stats (one call per container) only for the containers whose pages carry charts, unless
    FILROUGE_METRICS_DOCKER_STATS_SCOPE=all."""
    return settings.METRICS_DOCKER_STATS_SCOPE == "all" or row.get("panel")


def add_container_stats(connection, observed, previous=None):
    """Put each running container's CPU, memory and network counters on its row (one bounded
    round of one-shot stats calls, within METRICS_DOCKER_STATS_BUDGET seconds); returns how
    many calls it made. Only the panel's own containers (services, lab environments; see
    in_stats_scope); containers the last round did not reach go first."""
    running = [row for row in observed["containers"] if row["state"] == "running" and in_stats_scope(row)]
    sampled_before = {row["id"] for row in (previous or {}).get("containers") or [] if row.get("stats")}
    running.sort(key=lambda row: row["id"] in sampled_before)
    stats, calls = driver.container_stats(
        connection, [row["id"] for row in running], workers=settings.METRICS_DOCKER_STATS_WORKERS, budget=settings.METRICS_DOCKER_STATS_BUDGET,
    )
    for row in running:
        if row["id"] in stats:
            row["stats"] = stats[row["id"]]
    return calls


CONTAINER_FIGURES = (
    ("filrouge_container_cpu_cores", "cpu_seconds"),
    ("filrouge_container_memory_bytes", "memory_bytes"),
    ("filrouge_container_network_receive_bytes_per_second", "rx_bytes"),
    ("filrouge_container_network_transmit_bytes_per_second", "tx_bytes"),
)


def container_samples(cluster, observed):
    """Series of the engine and of each running container (counters become rates in the store)."""
    counts = observed.get("container_counts") or {}
    engine = {"cluster": cluster.name}
    samples = [
        metrics.Sample("filrouge_engine_containers_running", counts.get("running", 0), engine, obj=cluster),
        metrics.Sample("filrouge_engine_containers_unhealthy", counts.get("unhealthy", 0), engine, obj=cluster),
    ]
    for row in observed["containers"]:
        if not in_stats_scope(row):
            continue
        labels = {"cluster": cluster.name, "container": row["name"], "project": row.get("project", ""), "service": row.get("service", "")}
        # Restarts for every one of them, running or not: a container caught restarting is the one to see.
        samples.append(metrics.Sample("filrouge_container_restarts", row.get("restarts", 0), labels, obj=cluster))
        figures = row.get("stats") or {}
        for name, key in CONTAINER_FIGURES:
            if key in figures:
                samples.append(metrics.Sample(name, figures[key], labels, obj=cluster))
    return samples


@every(PROBE_INTERVAL, queue="low", timeout=300)
def probe_engines():
    """Periodic: refresh every Docker and Swarm cluster; one unreachable engine does not stop the others."""
    for cluster in Cluster.objects.filter(kind__in=ENGINE_KINDS).select_related("credential", "server", "server__credential"):
        try:
            probe_cluster(cluster)
        except JobFailed as exc:
            logger.warning("Probe of %s failed: %s", cluster, exc)
