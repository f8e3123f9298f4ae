"""Service observations derived from an engine probe, without any further API call."""

import metrics
from metrics.models import Series

from .backends.base import Observation
from .backends.docker import observation_from_rows
from .models import Service, ServiceStatus
from . import naming


def store_service_observations(cluster, observed, now):
    services = Service.objects.filter(cluster=cluster).exclude(status__in=[ServiceStatus.NEW, ServiceStatus.REMOVED]).select_related("current_release")
    samples = []
    for service in services:
        if cluster.kind == "swarm":
            observation = _swarm_observation(service, observed)
        else:
            rows = [row for row in observed.get("containers", []) if row.get("project") == service.project and row.get("service") == service.name]
            observation = observation_from_rows(service, rows)
        data = observation.as_dict()
        if "stats" in (service.observed or {}):
            data["stats"] = service.observed["stats"]
        Service.objects.filter(pk=service.pk).update(observed=data, observed_at=now)
        rows = [row for row in observed.get("containers", []) if row.get("project") == service.project and row.get("service") == service.name]
        samples.extend(service_samples(service, data, rows))
    metrics.record_many(samples, at=now)


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
