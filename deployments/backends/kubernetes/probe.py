"""Observed state of Kubernetes services from a cluster observation, without another call."""

import logging

from clusters.kubernetes.observe import pod_row  # noqa: F401 - re-exported for the backend

import metrics
from clusters.drivers import kubernetes as driver
from panel.jobs.errors import JobFailed

from deployments.backends.base import Observation
from deployments.probe import health_check_samples, service_samples
from deployments.models import Service, ServiceStatus

logger = logging.getLogger(__name__)


def observation_from_pods(service, rows, desired=None, extra=None):
    if desired is None:
        desired = (service.current_release.spec if service.current_release else service.spec).get("replicas", 1)
    rows = sorted(rows, key=lambda row: row["name"])
    running = sum(1 for row in rows if row["state"] == "running")
    healthy = sum(1 for row in rows if row["health"] == "healthy")
    return Observation(desired=desired, running=running, healthy=healthy, replicas=rows, extra={"kind": "kubernetes", "namespace": service.project, **(extra or {})})


def health_check_target(service):
    """(Service port name, path) the panel checks a Kubernetes service on through the API
    server's service proxy: its HTTP health check's port and path (the port defaults to the
    first container port, as the kubelet's probe does), or "/" on its first TCP port without a
    health check; None when there is nothing to reach (no Service object: no TCP port; a
    command check, the kubelet's; a health check port the Service does not expose)."""
    spec = service.current_release.spec if service.current_release else service.spec
    health = spec.get("health_check") or {}
    ports = [port for port in spec.get("ports") or [] if port.get("protocol", "tcp") == "tcp"]
    if not ports:
        return None
    kind = health.get("type", "none")
    if kind == "http":
        port, path = health.get("port") or ports[0]["container"], health.get("path") or "/"
    elif kind == "none":
        port, path = ports[0]["container"], "/"
    else:
        return None
    if not any(row["container"] == port for row in ports):
        return None
    return f"tcp-{port}", path if path.startswith("/") else "/" + path  # the Service port's name (render.py)


def kube_health_check_samples(cluster, services, observations, ctx=None):
    """Each service that should run (not stopped, desired > 0) gets an HTTP GET of its health
    check through the API server's service proxy, all at once and bounded like the engines'
    checks. A Service without a ready pod answers 503 "no endpoints available": down, with that
    reason. Returns (samples, {service pk: {"up", "seconds", "reason"}})."""
    targets = {}
    for service in services:
        target = health_check_target(service)
        if target and service.status != ServiceStatus.STOPPED and (observations[service.pk].get("desired") or 0) > 0:
            targets[service.pk] = target
    if not targets:
        return [], {}
    try:
        host, headers, ssl_context = driver.service_proxy_access(cluster, ctx)
    except JobFailed as exc:  # the observation just worked: a credential that changed meanwhile
        logger.warning("No health checks for the services of %s: %s", cluster, exc)
        return [], {}
    checks = {
        pk: [driver.service_proxy_url(host, service.project, service.name, port) + path]
        for service in services if service.pk in targets
        for pk, (port, path) in [(service.pk, targets[service.pk])]
    }
    outcomes = {}
    samples = health_check_samples([service for service in services if service.pk in checks], checks, headers=headers, ssl_context=ssl_context, outcomes=outcomes)
    return samples, outcomes


def store_kube_service_observations(cluster, service_pods, now, autoscalers=(), ctx=None):
    """Observed state and samples of the cluster's services: replicas, restarts, and from the
    same observation their pods' CPU and memory (metrics API) and their HPA's replicas; then
    each service's health check through the service proxy (time and result)."""
    hpas = {(row["namespace"], row["target"]): row for row in autoscalers or []}
    services = list(Service.objects.filter(cluster=cluster).exclude(status__in=[ServiceStatus.NEW, ServiceStatus.REMOVED]).select_related("current_release"))
    observations = {}
    for service in services:
        rows = [row for row in service_pods.get(str(service.pk), []) if row["namespace"] == service.project]
        previous = service.observed or {}
        # Events and rollout figures come from the service's own jobs; keep them.
        extra = {key: previous[key] for key in ("events", "rollout") if key in previous}
        observations[service.pk] = (rows, observation_from_pods(service, rows, extra=extra).as_dict())
    health_samples, outcomes = kube_health_check_samples(cluster, services, {pk: data for pk, (_, data) in observations.items()}, ctx)
    samples = list(health_samples)
    for service in services:
        rows, data = observations[service.pk]
        if service.pk in outcomes:
            data["health_check"] = outcomes[service.pk]
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
