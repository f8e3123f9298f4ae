"""Series of lab environments: what their containers use, their checks, how many run."""

import metrics
from metrics.models import Series

from .models import Environment, EnvironmentState
from .providers.docker_project import project_name


def record_environment_metrics(cluster, observed, now):
    """After an engine probe: CPU and memory of each live environment on that engine, summed
    over its containers' series (the probe recorded them just before)."""
    environments = list(Environment.objects.filter(cluster=cluster, state=EnvironmentState.READY).select_related("exercise__course", "owner"))
    if not environments:
        return
    by_project = {project_name(environment): environment for environment in environments}
    totals = {}
    containers = Series.objects.filter(
        object_type="cluster", object_id=cluster.pk, last_at=now, labels__project__in=list(by_project),
        name__in=["filrouge_container_cpu_cores", "filrouge_container_memory_bytes"],
    )
    for name, labels, value in containers.values_list("name", "labels", "last_value"):
        key = (labels.get("project"), name)
        totals[key] = totals.get(key, 0.0) + (value or 0.0)
    samples = []
    for project, environment in by_project.items():
        labels = {"environment": environment.name}
        for container_name, name in (("filrouge_container_cpu_cores", "filrouge_lab_environment_cpu_cores"), ("filrouge_container_memory_bytes", "filrouge_lab_environment_memory_bytes")):
            if (project, container_name) in totals:
                samples.append(metrics.Sample(name, totals[(project, container_name)], labels, obj=environment))
    metrics.record_many(samples, at=now)


def record_namespace_metrics(cluster, namespaces, now):
    """After a Kubernetes observation: CPU and memory of each live environment's namespace, from
    the metrics API figures the probe read in its one call (nothing when the cluster has no
    metrics-server)."""
    usage = {row["name"]: row for row in namespaces or [] if row.get("cpu_cores") is not None}
    if not usage:
        return
    samples = []
    for environment in Environment.objects.filter(cluster=cluster, state=EnvironmentState.READY).select_related("owner"):
        row = usage.get(environment.name)
        if row is not None:
            labels = {"environment": environment.name}
            samples.append(metrics.Sample("filrouge_lab_environment_cpu_cores", row["cpu_cores"], labels, obj=environment))
            samples.append(metrics.Sample("filrouge_lab_environment_memory_bytes", row["memory_bytes"], labels, obj=environment))
    metrics.record_many(samples, at=now)


def record_checks(environment, attempt, now):
    passed = sum(1 for result in attempt.results or [] if result.get("passed"))
    metrics.record("filrouge_lab_environment_checks_passed", passed, {"environment": environment.name}, obj=environment, at=now)


def record_environments_running(now):
    running = Environment.objects.filter(state=EnvironmentState.READY).count()
    metrics.record_many([metrics.Sample("filrouge_lab_environments_running", running, object_type="labs")], at=now)
