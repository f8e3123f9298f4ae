"""The driver's service proxy target (a load through it) and its pod metrics."""

import pytest
from kubernetes import client as k8s

from clusters.drivers import kubernetes as driver
from deployments.loadtest.engine import run_load
from tests.support.kube import both_credential_shapes

pytestmark = [pytest.mark.k8s, pytest.mark.django_db(transaction=True)]


def busy_app(kube_target, name="busy", replicas=2, cpu_bound=False):
    """A Deployment and a Service (80 → 8080); `cpu_bound`: the app that burns CPU per request."""
    admin = kube_target.api_client()
    labels = {"app": name}
    image, command = kube_target.cpu_bound_app() if cpu_bound else (kube_target.image("1"), None)
    container = {"name": "c", "image": image, "ports": [{"containerPort": 8080}],
                 "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "500m"}}}
    if command:
        container["command"] = command
    k8s.AppsV1Api(admin).create_namespaced_deployment(kube_target.namespace, {"metadata": {"name": name}, "spec": {
        "replicas": replicas, "selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": {
            "containers": [container]}}}})
    k8s.CoreV1Api(admin).create_namespaced_service(kube_target.namespace, {"metadata": {"name": name}, "spec": {
        "selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
    kube_target.wait_for(lambda: (k8s.AppsV1Api(admin).read_namespaced_deployment(name, kube_target.namespace).status.ready_replicas or 0) >= replicas,
                         timeout=120, message=f"{name} ready")


@both_credential_shapes
def test_a_load_reaches_a_service_through_the_api_servers_proxy(kube_target):
    busy_app(kube_target)
    base, headers, ssl_context = driver.service_proxy_target(kube_target.cluster, kube_target.namespace, "busy", 80)
    assert base.endswith(f"/api/v1/namespaces/{kube_target.namespace}/services/busy:80/proxy")
    assert base.startswith("https://") and ssl_context is not None
    assert ("Authorization" in headers) == (kube_target.credential_shape == "token")
    result = run_load(base + "/", concurrency=4, duration=2, headers=headers, ssl_context=ssl_context)
    assert result["requests"] > 0 and result["errors"] == 0, result["error_examples"]
    assert result["statuses"] == {"200": result["requests"]}


def test_a_namespace_kubeconfig_without_services_proxy_gets_403_answers(kube_target):
    busy_app(kube_target, replicas=1)
    limited = kube_target.limited_kubeconfig([{"apiGroups": [""], "resources": ["services"], "verbs": ["get"]}])
    base, headers, ssl_context = driver.service_proxy_target(limited, kube_target.namespace, "busy", "http")
    result = run_load(base + "/", concurrency=1, duration=1, headers=headers, ssl_context=ssl_context)
    assert result["errors"] == result["requests"] > 0 and set(result["statuses"]) == {"403"}


def test_pod_metrics_come_in_one_call_or_none_without_metrics_server(kube_target, settings):
    pace = kube_target.autoscale_pace(settings)   # a real cluster: skips without metrics-server
    busy_app(kube_target, cpu_bound=True)
    admin = kube_target.api_client()
    base, headers, ssl_context = driver.service_proxy_target(kube_target.cluster, kube_target.namespace, "busy", 80)

    def measured_busy():
        # some load, so that the pods' CPU shows in the window metrics-server reports
        run_load(base + "/", concurrency=2, duration=1, headers=headers, ssl_context=ssl_context)
        found = driver.pod_metrics(admin, kube_target.namespace) or []
        return found if len(found) == 2 and all(row["cpu_cores"] > 0 for row in found) else None

    rows = kube_target.wait_for(measured_busy, timeout=pace.wait_seconds, interval=pace.metrics_window / 3, message="two busy pods measured")
    assert all(row["namespace"] == kube_target.namespace and row["cpu_cores"] > 0 and row["memory_bytes"] > 0 for row in rows)
    assert all(isinstance(row["window"], str) and row["window"].endswith("s") for row in rows)   # a duration: "1s", "15.02s"
    assert any(row["namespace"] == kube_target.namespace for row in driver.pod_metrics(admin))
    if kube_target.is_standin:
        # the stand-in's lever plays a cluster without metrics-server (404 on the group)
        assert {row["window"] for row in rows} == {"1s"}
        kube_target.api.metrics_server = False
        assert driver.pod_metrics(admin, kube_target.namespace) is None
