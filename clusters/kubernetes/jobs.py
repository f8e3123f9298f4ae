"""Job kinds for Kubernetes clusters (connect test, observe) and their periodic probe.

The observation is a fixed number of list calls (clusters/kubernetes/observe.py) whatever the
number of pods, kept on `Cluster.observed` with `observed_at`; the services the panel
deployed on the cluster get their pods from the same pod list.
"""

import logging

import metrics
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from kubernetes import client as kube_client

from panel.jobs.errors import JobFailed
from panel.jobs.kinds import JobKind, register
from panel.jobs.periodic import every
from panel.jobs.worker import on_worker_start

from clusters.drivers import kubernetes as driver
from clusters.kubernetes.observe import observe_cluster
from clusters.models import Cluster
from clusters.signals import kubernetes_observed

logger = logging.getLogger("filrouge.clusters")

OBSERVE_INTERVAL = 60


class KubeClusterJob(JobKind):
    queue = "default"
    permission = "is_operator"
    target_model = Cluster

    def cluster(self, ctx):
        cluster = Cluster.objects.select_related("credential").get(pk=ctx.job.target_id)
        if cluster.kind != "kubernetes":
            raise JobFailed(f"{cluster} is a {cluster.get_kind_display()} cluster, not a Kubernetes cluster.")
        return cluster


def check_access(api_client, namespace):
    """One authenticated request (/version answers anyone): list a pod in the default namespace."""
    with driver.api_errors(f"the Kubernetes API at {driver.describe(api_client)}"):
        kube_client.CoreV1Api(api_client).list_namespaced_pod(namespace, limit=1)


@register
class KubeConnectTest(KubeClusterJob):
    """Reach the API server, check the credential, and report the server version (or why not)."""

    name = "kube-connect-test"
    label = _("Kubernetes connect test")
    timeout = 120

    def run(self, ctx):
        cluster = self.cluster(ctx)
        try:
            api_client = driver.connect(cluster, ctx)
        except JobFailed as exc:
            Cluster.objects.filter(pk=cluster.pk).update(reachable=False, observe_error=str(exc)[:2000])
            raise
        try:
            ctx.line(f"connecting to {driver.describe(api_client)}", host=cluster.name, task="connect")
            version = driver.server_version(api_client)
            ctx.ok(f"Kubernetes {version}", host=cluster.name, task="connect")
            namespace = cluster.default_namespace or "default"
            check_access(api_client, namespace)
            ctx.ok(f"the credential may list pods in namespace {namespace}", host=cluster.name, task="connect")
        except JobFailed as exc:
            Cluster.objects.filter(pk=cluster.pk).update(reachable=False, observe_error=str(exc)[:2000])
            raise
        finally:
            api_client.close()
        Cluster.objects.filter(pk=cluster.pk).update(reachable=True, version=version, observe_error="")
        return {"version": version}


@register
class KubeObserve(KubeClusterJob):
    """Refresh the observed state of one Kubernetes cluster now (the periodic probe's work)."""

    name = "kube-observe"
    label = _("Kubernetes observe")
    timeout = 300

    def run(self, ctx):
        cluster = self.cluster(ctx)
        observed = observe_kube_cluster(cluster, ctx)
        workloads = observed["workloads"]
        ctx.ok(
            f"{observed['version']}: {observed['nodes_ready']}/{len(observed['nodes'])} nodes ready, {len(observed['namespaces'])} namespaces, "
            f"{workloads['deployments']} deployments, {workloads['pods']} pods, {workloads['services']} services, "
            f"{len(observed['warnings'])} recent warnings; {observed['probe']['calls']} requests in {observed['probe']['seconds']:.2f} s",
            host=cluster.name, task="observe",
        )
        return {key: observed[key] for key in ("version", "workloads", "probe")}


def observe_kube_cluster(cluster, ctx=None):
    """Observe one cluster and store it on the cluster and on its services; raises JobFailed."""
    try:
        api_client = driver.connect(cluster, ctx)
        try:
            observed, service_pods, _calls = observe_cluster(api_client)
        finally:
            api_client.close()
    except JobFailed as exc:
        Cluster.objects.filter(pk=cluster.pk).update(reachable=False, observe_error=str(exc)[:2000])
        raise
    now = timezone.now()
    observed["probe"]["at"] = now.isoformat()
    Cluster.objects.filter(pk=cluster.pk).update(observed=observed, observed_at=now, reachable=True, version=observed["version"], observe_error="")
    metrics.record_many(cluster_samples(cluster, observed), at=now)
    kubernetes_observed.send(sender=Cluster, cluster=cluster, service_pods=service_pods, now=now, autoscalers=observed.get("autoscalers") or [],
                             namespaces=observed.get("namespaces") or [], ctx=ctx)
    return observed


def cluster_samples(cluster, observed):
    """The metric samples of one observation (names in metrics/names.py): the cluster's nodes,
    pods, ready pods and restarts; per namespace its ready pods, restarts and, when the cluster
    serves the metrics API, CPU and memory; per HPA its current and desired replicas."""
    labels = {"cluster": cluster.name}
    workloads = observed.get("workloads") or {}
    samples = [
        metrics.Sample("filrouge_kubernetes_nodes_ready", observed.get("nodes_ready") or 0, labels, obj=cluster),
        metrics.Sample("filrouge_kubernetes_pods", workloads.get("pods") or 0, labels, obj=cluster),
        metrics.Sample("filrouge_kubernetes_pods_ready", workloads.get("pods_ready") or 0, labels, obj=cluster),
        metrics.Sample("filrouge_kubernetes_pod_restarts", workloads.get("restarts") or 0, labels, obj=cluster),
    ]
    usage = observed.get("usage")
    if usage is not None:
        samples.append(metrics.Sample("filrouge_kubernetes_cpu_cores", usage["cpu_cores"], labels, obj=cluster))
        samples.append(metrics.Sample("filrouge_kubernetes_memory_bytes", usage["memory_bytes"], labels, obj=cluster))
    for row in observed.get("namespaces") or []:
        if not row.get("pods"):
            continue  # an empty namespace has nothing to chart
        where = {**labels, "namespace": row["name"]}
        samples.append(metrics.Sample("filrouge_kubernetes_namespace_pods_ready", row.get("pods_ready") or 0, where, obj=cluster))
        samples.append(metrics.Sample("filrouge_kubernetes_namespace_restarts", row.get("restarts") or 0, where, obj=cluster))
        if usage is not None and row.get("cpu_cores") is not None:
            samples.append(metrics.Sample("filrouge_kubernetes_namespace_cpu_cores", row["cpu_cores"], where, obj=cluster))
            samples.append(metrics.Sample("filrouge_kubernetes_namespace_memory_bytes", row["memory_bytes"], where, obj=cluster))
    for row in observed.get("autoscalers") or []:
        where = {**labels, "namespace": row["namespace"], "hpa": row["name"]}
        samples.append(metrics.Sample("filrouge_kubernetes_hpa_current_replicas", row["current"], where, obj=cluster))
        samples.append(metrics.Sample("filrouge_kubernetes_hpa_desired_replicas", row["desired"], where, obj=cluster))
    return samples


@every(OBSERVE_INTERVAL, queue="low", timeout=300)
def observe_kubernetes_clusters():
    """Periodic: refresh every Kubernetes cluster; one unreachable cluster does not stop the others."""
    for cluster in Cluster.objects.filter(kind="kubernetes").select_related("credential"):
        try:
            observe_kube_cluster(cluster)
        except JobFailed as exc:
            logger.warning("Observing %s failed: %s", cluster, exc)




@on_worker_start
def preload_kubernetes_client():
    """The official client imports its API and model classes on first use: seconds of
    pydantic model building. RQ forks a fresh horse per job, which would pay it every time;
    importing them once in the worker, before it registers and takes its first job, lets
    every horse inherit them (so the first job starts as fast as the next ones)."""
    from kubernetes import watch  # noqa: F401

    for name in ("CoreV1Api", "AppsV1Api", "NetworkingV1Api", "AutoscalingV2Api", "VersionApi", "V1Pod", "V1Deployment", "CoreV1Event", "V1Namespace"):
        getattr(kube_client, name, None)  # a name a client version lacks is skipped, not a traceback


# Manifests and isolated namespaces declare their kinds beside this module; autodiscovery imports
# `<app>/<room>/jobs.py` only, so this one brings them in.
from clusters.kubernetes import isolation_jobs, manifest_jobs  # noqa: E402,F401
