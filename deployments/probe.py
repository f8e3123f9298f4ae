"""Service observations derived from an engine probe, without any further API call to the
engine; and each service's health check, an HTTP GET to its published port, timed."""

from urllib.parse import urlparse

import metrics
from django.conf import settings

from clusters.drivers import http
from metrics.models import Series

from .backends.base import Observation
from .backends.docker import observation_from_rows
from .models import Service, ServiceStatus
from . import naming


def store_service_observations(cluster, observed, now):
    services = list(Service.objects.filter(cluster=cluster).exclude(status__in=[ServiceStatus.NEW, ServiceStatus.REMOVED]).select_related("current_release"))
    samples, checks, observations = [], {}, {}
    engine_host = engine_address(cluster)
    for service in services:
        if cluster.kind == "swarm":
            observation = _swarm_observation(service, observed)
        else:
            rows = [row for row in observed.get("containers", []) if row.get("project") == service.project and row.get("service") == service.name]
            observation = observation_from_rows(service, rows)
        data = observation.as_dict()
        if "stats" in (service.observed or {}):
            data["stats"] = service.observed["stats"]
        rows = [row for row in observed.get("containers", []) if row.get("project") == service.project and row.get("service") == service.name]
        urls = health_check_urls(service, rows, engine_host, swarm=cluster.kind == "swarm")
        # A service that should run but has no replica up fails its check; one whose replicas
        # run without a published port is not checked (the panel cannot reach it).
        replicas_up = data.get("running") or any(row.get("state") in ("running", "paused") for row in rows)
        checks[service.pk] = None if data.get("desired") and not replicas_up and has_health_check(service) else urls
        data["restarts"] = sum(row.get("restarts", 0) for row in rows)
        observations[service.pk] = data
        samples.extend(service_samples(service, data, rows))
        if rows:
            samples.append(metrics.Sample("filrouge_service_restarts", data["restarts"], {"service": service.name, "project": service.project}, obj=service))
    outcomes = {}
    samples.extend(health_check_samples(services, checks, outcomes=outcomes))
    for service in services:
        data = observations[service.pk]
        if service.pk in outcomes:
            data["health_check"] = outcomes[service.pk]  # why it fails, for the on-call panel
        Service.objects.filter(pk=service.pk).update(observed=data, observed_at=now)
    metrics.record_many(samples, at=now)


def engine_address(cluster):
    """Where the engine's published ports answer: the panel's own host for a local socket,
    the engine's host otherwise."""
    endpoint = cluster.endpoint or ""
    if endpoint.startswith("unix://") or not endpoint:
        return "127.0.0.1"
    if endpoint.startswith("ssh://") and cluster.server_id:
        return cluster.server.address
    return urlparse(endpoint).hostname or "127.0.0.1"


def has_health_check(service):
    spec = service.current_release.spec if service.current_release else service.spec
    health = (spec.get("health_check") or {}).get("type", "none")
    return health == "http" or (health == "none" and any(port.get("protocol", "tcp") == "tcp" for port in spec.get("ports") or []))


def health_check_urls(service, rows, engine_host, swarm=False):
    """The URLs of a service's health check, one per running replica with a published port:
    its HTTP health check's path and port, or "/" on its first TCP port when it has none (a
    command check runs inside the container; the engine reports only its result)."""
    spec = service.current_release.spec if service.current_release else service.spec
    health = spec.get("health_check") or {}
    ports = [port for port in spec.get("ports") or [] if port.get("protocol", "tcp") == "tcp"]
    if health.get("type") == "http":
        port, path = health.get("port") or 80, health.get("path") or "/"
    elif health.get("type", "none") == "none" and ports:
        port, path = ports[0]["container"], "/"
    else:
        return []
    if not path.startswith("/"):
        path = "/" + path
    published = []
    if swarm:
        published = [(port_spec.get("host_ip") or "0.0.0.0", port_spec["published"]) for port_spec in ports if port_spec["container"] == port and port_spec.get("published")]
    else:
        for row in rows:
            if row.get("state") not in ("running", "paused"):  # a paused replica is one that does not answer
                continue
            for mapping in row.get("ports") or []:
                # "127.0.0.1:32768->8080/tcp" (the list API's published port of one replica)
                outside, _, inside = mapping.partition("->")
                if inside == f"{port}/tcp" and ":" in outside:
                    address, _, number = outside.rpartition(":")
                    published.append((address, int(number)))
                    break
    urls = []
    for address, number in published:
        address = engine_host if address in ("0.0.0.0", "::", "", "[::]") else address
        if address in ("127.0.0.1", "::1", "localhost") and engine_host not in ("127.0.0.1", "::1", "localhost"):
            continue  # published on a remote engine's loopback: not reachable from the panel
        host = f"[{address}]" if ":" in address else address
        urls.append(f"http://{host}:{number}{path}")
    return urls


def health_check_samples(services, checks, headers=None, ssl_context=None, outcomes=None):
    """Check every URL of every service at once (bounded: FILROUGE_METRICS_HEALTH_CHECK_TIMEOUT
    each, FILROUGE_METRICS_HEALTH_CHECK_BUDGET for the round): per service, the slowest
    replica's time and whether every replica answered 2xx/3xx.

    `checks`: {service pk: [url, ...], or None for "should run, nothing up: down"}; `headers`
    and `ssl_context` go with every request (a cluster's API server for Kubernetes services:
    never logged). `outcomes`, a dict, receives {service pk: {"up", "seconds", "reason"}}."""
    results = http.check_many(
        [url for urls in checks.values() for url in urls or ()],
        timeout=settings.METRICS_HEALTH_CHECK_TIMEOUT, budget=settings.METRICS_HEALTH_CHECK_BUDGET,
        headers=headers, ssl_context=ssl_context,
    )
    outcomes = {} if outcomes is None else outcomes
    samples = []
    for service in services:
        labels = {"service": service.name, "project": service.project}
        if service.pk in checks and checks[service.pk] is None:
            samples.append(metrics.Sample("filrouge_service_health_check_up", 0, labels, obj=service))
            outcomes[service.pk] = {"up": False, "seconds": None, "reason": "no replica up"}
            continue
        answers = [results[url] for url in checks.get(service.pk) or [] if url in results]
        if not answers:
            continue
        up = all(status is not None and 200 <= status < 400 for status, _, _ in answers)
        seconds = round(max(seconds for _, seconds, _ in answers), 6)
        samples.append(metrics.Sample("filrouge_service_health_check_seconds", seconds, labels, obj=service))
        samples.append(metrics.Sample("filrouge_service_health_check_up", 1 if up else 0, labels, obj=service))
        reason = "" if up else next(error or f"HTTP {status}" for status, _, error in answers if status is None or not 200 <= status < 400)
        outcomes[service.pk] = {"up": up, "seconds": seconds, "reason": reason}
    return samples


def service_samples(service, data, container_rows=()):
    """Replicas desired / running / healthy, and the CPU and memory its containers use (summed
    from the engine probe's stats, when it took them)."""
    labels = {"service": service.name, "project": service.project}
    samples = [
        metrics.Sample(f"filrouge_service_replicas_{what}", data.get(what) or 0, labels, obj=service)
        for what in ("desired", "running", "healthy")
    ]
    stats = [row["stats"] for row in container_rows if row.get("stats")]
    if stats:
        memory = sum(figures.get("memory_bytes", 0) for figures in stats)
        samples.append(metrics.Sample("filrouge_service_memory_bytes", memory, labels, obj=service))
        # CPU is a rate the store computed for each container's series a moment ago: sum those.
        cpu = sum(
            value or 0.0 for value in Series.objects.filter(
                name="filrouge_container_cpu_cores", labels__container__in=[row["name"] for row in container_rows], object_type="cluster",
                object_id=service.cluster_id,
            ).values_list("last_value", flat=True)
        )
        samples.append(metrics.Sample("filrouge_service_cpu_cores", cpu, labels, obj=service))
    return samples


def _swarm_observation(service, observed):
    name = naming.swarm_service_name(service)
    row = next((item for item in observed.get("services", []) if item["name"] == name), None)
    if row is None:
        return Observation(desired=0)
    tasks = [task for task in observed.get("tasks", []) if task["service_id"] == row["id"]]
    replicas = [
        {"name": task["name"], "state": task["state"], "status": task["error"], "health": "healthy" if task["state"] == "running" else "starting",
         "image": task["image"], "release": task["release"], "ports": [], "node": task["node"]}
        for task in sorted(tasks, key=lambda task: task["name"])
    ]
    desired = row["replicas"] if isinstance(row["replicas"], int) else len(tasks)
    return Observation(desired=desired, running=row["running"], healthy=row["running"], replicas=replicas, extra={"update": row["update"]})
