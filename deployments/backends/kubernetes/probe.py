"""Observed state of Kubernetes services from a cluster observation, without another call."""

from clusters.kubernetes.observe import pod_row  # noqa: F401 - re-exported for the backend

import metrics

from deployments.backends.base import Observation
from deployments.probe import service_samples
from deployments.models import Service, ServiceStatus


def observation_from_pods(service, rows, desired=None, extra=None):
    if desired is None:
        desired = (service.current_release.spec if service.current_release else service.spec).get("replicas", 1)
    rows = sorted(rows, key=lambda row: row["name"])
    running = sum(1 for row in rows if row["state"] == "running")
    healthy = sum(1 for row in rows if row["health"] == "healthy")
    return Observation(desired=desired, running=running, healthy=healthy, replicas=rows, extra={"kind": "kubernetes", "namespace": service.project, **(extra or {})})


def store_kube_service_observations(cluster, service_pods, now, autoscalers=()):
    """Observed state and samples of the cluster's services: replicas, restarts, and from the
    same observation their pods' CPU and memory (metrics API) and their HPA's replicas."""
    hpas = {(row["namespace"], row["target"]): row for row in autoscalers or []}
    services = Service.objects.filter(cluster=cluster).exclude(status__in=[ServiceStatus.NEW, ServiceStatus.REMOVED]).select_related("current_release")
    samples = []
    for service in services:
        rows = [row for row in service_pods.get(str(service.pk), []) if row["namespace"] == service.project]
        previous = service.observed or {}
        # Events and rollout figures come from the service's own jobs; keep them.
        extra = {key: previous[key] for key in ("events", "rollout") if key in previous}
        data = observation_from_pods(service, rows, extra=extra).as_dict()
        Service.objects.filter(pk=service.pk).update(observed=data, observed_at=now)
        samples.extend(service_samples(service, data))
        restarts = sum(row.get("restarts") or 0 for row in rows)
        labels = {"service": service.name, "project": service.project}
        samples.append(metrics.Sample("filrouge_service_restarts", restarts, labels, obj=service))
        measured = [row for row in rows if row.get("cpu_cores") is not None]
        if measured:
            samples.append(metrics.Sample("filrouge_service_cpu_cores", sum(row["cpu_cores"] for row in measured), labels, obj=service))
            samples.append(metrics.Sample("filrouge_service_memory_bytes", sum(row["memory_bytes"] for row in measured), labels, obj=service))
        hpa = hpas.get((service.project, f"Deployment/{service.name}"))
        if hpa is not None:
            samples.append(metrics.Sample("filrouge_service_hpa_current_replicas", hpa["current"], labels, obj=service))
            samples.append(metrics.Sample("filrouge_service_hpa_desired_replicas", hpa["desired"], labels, obj=service))
    metrics.record_many(samples, at=now)
