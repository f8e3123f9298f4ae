"""Service observations derived from an engine probe, without any further API call."""

from .backends.base import Observation
from .backends.docker import observation_from_rows
from .models import Service, ServiceStatus
from . import naming


def store_service_observations(cluster, observed, now):
    services = Service.objects.filter(cluster=cluster).exclude(status__in=[ServiceStatus.NEW, ServiceStatus.REMOVED]).select_related("current_release")
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
