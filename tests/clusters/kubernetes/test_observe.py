"""Observed state of a Kubernetes cluster: a fixed number of list calls, kept on the cluster."""

import pytest
from kubernetes import client as k8s

from clusters.kubernetes.jobs import observe_kubernetes_clusters
from clusters.models import Cluster
from deployments.models import Service
from panel.jobs.services import start_job

from tests.support.kube import both_credential_shapes
from tests.support.kube_jobs import deploy, job_text, kube_service, run_job, succeeded

pytestmark = [pytest.mark.k8s, pytest.mark.django_db(transaction=True)]


def observe(cluster, user):
    job = run_job(start_job("kube-observe", {}, user, target=cluster))
    assert job.status == "succeeded", job.error
    return job, Cluster.objects.get(pk=cluster.pk)


@both_credential_shapes
def test_it_stores_version_nodes_namespaces_workloads_and_warnings(kube_target, bob):
    service = kube_service(kube_target, replicas=2)
    succeeded(deploy(service, bob))
    broken = kube_target.missing_image()
    apps = k8s.AppsV1Api(kube_target.api_client())
    apps.create_namespaced_deployment(kube_target.namespace, {
        "metadata": {"name": "broken"}, "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "broken"}},
                                                  "template": {"metadata": {"labels": {"app": "broken"}}, "spec": {"containers": [{"name": "c", "image": broken}]}}}})
    core = k8s.CoreV1Api(kube_target.api_client())
    kube_target.wait_for(lambda: [e for e in core.list_namespaced_event(kube_target.namespace, field_selector="type=Warning").items], message="a warning event")

    job, cluster = observe(kube_target.cluster, bob)

    observed = cluster.observed
    assert cluster.observed_at is not None and cluster.reachable is True
    assert observed["version"].startswith("v1.") and cluster.version == observed["version"]
    node = observed["nodes"][0]
    assert node["ready"] is True and node["kubelet_version"].startswith("v1.")
    assert node["capacity"]["cpu"] and node["allocatable"]["memory"] and node["roles"]
    assert kube_target.namespace in [row["name"] for row in observed["namespaces"]]
    assert next(row for row in observed["namespaces"] if row["name"] == kube_target.namespace)["pods"] >= 3
    assert observed["workloads"]["deployments"] >= 2 and observed["workloads"]["services"] >= 1
    assert observed["workloads"]["pods_by_phase"].get("Running", 0) >= 2
    assert any(broken in row["message"] or row["namespace"] == kube_target.namespace for row in observed["warnings"])
    assert "requests in" in job_text(job)
    kube_target.assert_no_secret_in(job_text(job) + str(cluster.observed))
    service.refresh_from_db()
    assert service.observed["healthy"] == 2 and len(service.observed["replicas"]) == 2


def test_the_number_of_requests_does_not_grow_with_the_pods(kube_target, bob):
    kube_target.require_standin("request_log")
    api = kube_target.api
    api.reset_request_log()
    observe(kube_target.cluster, bob)
    few = len(api.request_log)

    apps = k8s.AppsV1Api(kube_target.api_client())
    apps.create_namespaced_deployment(kube_target.namespace, {
        "metadata": {"name": "many"}, "spec": {"replicas": 40, "selector": {"matchLabels": {"app": "many"}},
                                                "template": {"metadata": {"labels": {"app": "many"}}, "spec": {"containers": [{"name": "c", "image": "x:1"}]}}}})
    core = k8s.CoreV1Api(kube_target.api_client())
    kube_target.wait_for(lambda: len(core.list_namespaced_pod(kube_target.namespace).items) >= 40, message="40 pods")
    api.reset_request_log()
    _job, cluster = observe(kube_target.cluster, bob)

    # version, six lists from the watch cache, HPAs, and one list of the pods' metrics
    assert len(api.request_log) == few == 9
    assert all("resourceVersion=0" in path for method, path in api.request_log
               if method == "GET" and path.split("?")[0] not in ("/version", "/version/", "/apis/metrics.k8s.io/v1beta1/pods"))
    assert cluster.observed["probe"]["calls"] == 9


def test_the_periodic_probe_refreshes_clusters_and_their_services(kube_target, bob):
    service = kube_service(kube_target, replicas=1)
    succeeded(deploy(service, bob))
    Service.objects.filter(pk=service.pk).update(observed={})

    observe_kubernetes_clusters()

    assert Cluster.objects.get(pk=kube_target.cluster.pk).observed["nodes"]
    assert Service.objects.get(pk=service.pk).observed["replicas"][0]["state"] == "running"


def test_an_unreachable_cluster_keeps_the_reason(kube_target, bob):
    from tests.support.kube_jobs import free_port, token_cluster

    cluster = token_cluster(f"https://127.0.0.1:{free_port()}", "token")
    job = run_job(start_job("kube-observe", {}, bob, target=cluster))
    assert job.status == "failed"
    cluster.refresh_from_db()
    assert cluster.reachable is False and "Cannot reach" in cluster.observe_error


def test_it_samples_pod_cpu_memory_readiness_and_autoscalers_with_one_metrics_call(kube_target, bob, settings):
    from clusters.drivers.kubernetes import pod_metrics, service_proxy_target
    from deployments.loadtest.engine import run_load

    pace = kube_target.autoscale_pace(settings)   # a real cluster: its own pace, and skips without metrics-server
    ns = kube_target.namespace
    admin = kube_target.api_client()
    apps, core = k8s.AppsV1Api(admin), k8s.CoreV1Api(admin)
    labels = {"app": "busy"}
    image, command = kube_target.cpu_bound_app()
    container = {"name": "c", "image": image, "ports": [{"containerPort": 8080}], "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "500m"}}}
    if command:
        container["command"] = command
    apps.create_namespaced_deployment(ns, {"metadata": {"name": "busy"}, "spec": {
        "replicas": 2, "selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}}})
    core.create_namespaced_service(ns, {"metadata": {"name": "busy"}, "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]}})
    k8s.AutoscalingV2Api(admin).create_namespaced_horizontal_pod_autoscaler(ns, {"metadata": {"name": "busy"}, "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "busy"}, "minReplicas": 2, "maxReplicas": 2}})
    kube_target.wait_for(lambda: (apps.read_namespaced_deployment("busy", ns).status.ready_replicas or 0) >= 2, timeout=180, message="busy ready")
    base, headers, ssl_context = service_proxy_target(kube_target.cluster, ns, "busy", 80)

    def busy_measured():
        # requests through the service proxy until metrics-server's window shows them on both
        # pods (one window on the stand-in, 15-30 s on a real cluster)
        run_load(base + "/", concurrency=2, duration=1, headers=headers, ssl_context=ssl_context)
        rows = pod_metrics(admin, ns) or []
        return len(rows) == 2 and sum(row["cpu_cores"] for row in rows) > 0.01

    kube_target.wait_for(busy_measured, timeout=pace.wait_seconds, interval=pace.metrics_window / 3, message="the busy pods' CPU measured")
    # one more second of load, then one probe: its window still holds the load
    run_load(base + "/", concurrency=2, duration=1, headers=headers, ssl_context=ssl_context)
    _job, cluster = observe(kube_target.cluster, bob)

    row = next(item for item in cluster.observed["namespaces"] if item["name"] == ns)
    assert row["pods_ready"] == 2 and row["restarts"] == 0
    assert row["cpu_cores"] > 0.01 and row["memory_bytes"] > 0   # the load's CPU, in metrics-server's window
    hpa = next(item for item in cluster.observed["autoscalers"] if item["namespace"] == ns)
    assert hpa["target"] == "Deployment/busy" and hpa["min"] == 2 and hpa["max"] == 2
    assert cluster.observed["usage"]["pods_measured"] >= 2

    from metrics.models import Series

    series = {s.name: s for s in Series.objects.filter(object_type="cluster", object_id=cluster.pk, labels__namespace=ns)}
    assert series["filrouge_kubernetes_namespace_cpu_cores"].last_value == pytest.approx(row["cpu_cores"])
    assert series["filrouge_kubernetes_namespace_pods_ready"].last_value == 2
    assert series["filrouge_kubernetes_hpa_desired_replicas"].labels == {"cluster": cluster.name, "namespace": ns, "hpa": "busy"}

    # The chart's data: the metrics API answers the same figure for the cluster's operators.
    from tests.fixtures.actors import api_client

    body = api_client(bob).get("/api/metrics/", {"object_type": "cluster", "object_id": cluster.pk, "range": "15m", "step": 60,
                                                 "names": "filrouge_kubernetes_namespace_cpu_cores"}).json()
    mine = next(item for item in body["series"] if item["labels"].get("namespace") == ns)
    # (the API rounds to 6 decimals)
    assert mine["unit"] == "cores" and [v for v in mine["values"] if v is not None][-1] == pytest.approx(row["cpu_cores"], abs=1e-6)


def test_without_metrics_server_the_probe_samples_no_usage(kube_target, bob):
    kube_target.require_standin("metrics_server = False")
    kube_target.api.metrics_server = False
    _job, cluster = observe(kube_target.cluster, bob)
    assert cluster.observed["usage"] is None
    from metrics.models import Series

    assert not Series.objects.filter(object_type="cluster", object_id=cluster.pk, name="filrouge_kubernetes_cpu_cores").exists()
    assert Series.objects.filter(object_type="cluster", object_id=cluster.pk, name="filrouge_kubernetes_pods_ready").exists()


def test_a_credential_that_may_not_read_hpas_or_metrics_still_observes_the_rest(kube_target):
    import uuid

    from clusters.drivers.kubernetes import connect_kubeconfig
    from clusters.kubernetes.observe import observe_cluster

    kube_target.require_standin("issue_user_token")
    user = f"reader-{uuid.uuid4().hex[:6]}"
    rbac = k8s.RbacAuthorizationV1Api(kube_target.api_client())
    rbac.create_cluster_role({"metadata": {"name": user}, "rules": [
        {"apiGroups": [""], "resources": ["nodes", "namespaces", "pods", "services", "events"], "verbs": ["list"]},
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["list"]}]})
    rbac.create_cluster_role_binding({"metadata": {"name": user}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": user},
                                      "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]})
    try:
        api_client = connect_kubeconfig(kube_target.api.kubeconfig(token=kube_target.api.issue_user_token(user)))
        observed, _pods, calls = observe_cluster(api_client)
        assert calls == 9 and observed["autoscalers"] == [] and observed["usage"] is None
        skipped = " ".join(observed["probe"]["skipped"])
        assert "horizontalpodautoscalers" in skipped and "metrics.k8s.io" in skipped
    finally:
        rbac.delete_cluster_role(user)
        rbac.delete_cluster_role_binding(user)
