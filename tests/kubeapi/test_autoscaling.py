"""The stand-in's metrics-server, service proxy and HPA controller, through the official client."""

from __future__ import annotations

import json
import threading
import time

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.kubeapi.test_standin import condition, wait_for


@pytest.fixture
def core(kube_client):
    return client.CoreV1Api(kube_client)


@pytest.fixture
def apps(kube_client):
    return client.AppsV1Api(kube_client)


@pytest.fixture
def hpas(kube_client):
    return client.AutoscalingV2Api(kube_client)


@pytest.fixture
def quick(kube_standin, kube_namespace):
    """A cluster whose metrics window and HPA sync period are one second (the fixture's reset restores 15 s)."""
    kube_standin.metrics_window = 1.0
    kube_standin.hpa_sync_period = 1.0
    return kube_standin


def raw_get(api_client, path):
    params = api_client.param_serialize(method="GET", resource_path=path, auth_settings=["BearerToken"],
                                        header_params={"Accept": "application/json"})
    response = api_client.call_api(*params)
    response.read()
    return json.loads(response.data)


def web(apps, core, ns, requests=True, replicas=1, limit="200m"):
    labels = {"app": "web"}
    resources = {"requests": {"cpu": "100m", "memory": "32Mi"}, "limits": {"cpu": limit}} if requests else {}
    apps.create_namespaced_deployment(ns, {
        "metadata": {"name": "web"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                     {"name": "php-apache", "image": "registry.k8s.io/hpa-example", "ports": [{"containerPort": 80}],
                      "resources": resources}]}}}})
    core.create_namespaced_service(ns, {"metadata": {"name": "web"},
                                        "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": 80}]}})


def hpa(hpas, ns, minimum=1, maximum=6, target=50, behavior=None):
    spec = {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": minimum, "maxReplicas": maximum,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}}}]}
    if behavior:
        spec["behavior"] = behavior
    hpas.create_namespaced_horizontal_pod_autoscaler(ns, {"metadata": {"name": "web"}, "spec": spec})


def ready(apps, ns, count):
    wait_for(lambda: (apps.read_namespaced_deployment("web", ns).status.ready_replicas or 0) >= count, what=f"{count} ready")


class Load:
    """Clients requesting the service through the proxy until stopped."""

    def __init__(self, standin, ns, clients=4):
        self.stop = threading.Event()
        self.answers = []
        self.threads = [threading.Thread(target=self._run, args=(standin, ns), daemon=True) for _ in range(clients)]

    def _run(self, standin, ns):
        api_client = standin.api_client()
        core = client.CoreV1Api(api_client)
        try:
            while not self.stop.is_set():
                self.answers.append(core.connect_get_namespaced_service_proxy_with_path("web:http", ns, ""))
        finally:
            api_client.close()

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(10)


def test_metrics_server_serves_pod_and_node_metrics_like_the_real_one(quick, kube_client, apps, core, kube_namespace):
    web(apps, core, kube_namespace, replicas=2)
    ready(apps, kube_namespace, 2)
    groups = client.ApisApi(kube_client).get_api_versions()
    assert "metrics.k8s.io" in [group.name for group in groups.groups]
    resources = raw_get(kube_client, "/apis/metrics.k8s.io/v1beta1")
    assert {(r["name"], r["kind"], r["namespaced"]) for r in resources["resources"]} == {
        ("pods", "PodMetrics", True), ("nodes", "NodeMetrics", False)}
    custom = client.CustomObjectsApi(kube_client)
    listed = wait_for(lambda: (lambda doc: doc if len(doc["items"]) == 2 else None)(
        custom.list_namespaced_custom_object("metrics.k8s.io", "v1beta1", kube_namespace, "pods")), what="pod metrics")
    assert listed["kind"] == "PodMetricsList"
    item = listed["items"][0]
    assert item["window"] == "1s" and item["timestamp"].endswith("Z")
    usage = item["containers"][0]["usage"]
    assert item["containers"][0]["name"] == "php-apache"
    assert usage["cpu"].endswith("n") and int(usage["cpu"][:-1]) > 0
    assert usage["memory"].endswith("Ki") and int(usage["memory"][:-2]) >= 20 * 1024
    one = custom.get_namespaced_custom_object("metrics.k8s.io", "v1beta1", kube_namespace, "pods", item["metadata"]["name"])
    assert one["kind"] == "PodMetrics" and one["metadata"]["name"] == item["metadata"]["name"]
    nodes = custom.list_cluster_custom_object("metrics.k8s.io", "v1beta1", "nodes")
    assert nodes["kind"] == "NodeMetricsList" and nodes["items"][0]["usage"]["cpu"].endswith("n")
    with pytest.raises(ApiException) as missing:
        custom.get_namespaced_custom_object("metrics.k8s.io", "v1beta1", kube_namespace, "pods", "nope")
    assert missing.value.status == 404


def test_a_cluster_without_metrics_server_serves_no_metrics_api(quick, kube_client, kube_namespace):
    quick.metrics_server = False
    groups = client.ApisApi(kube_client).get_api_versions()
    assert "metrics.k8s.io" not in [group.name for group in groups.groups]
    with pytest.raises(ApiException) as absent:
        client.CustomObjectsApi(kube_client).list_namespaced_custom_object("metrics.k8s.io", "v1beta1", kube_namespace, "pods")
    assert absent.value.status == 404 and "could not find the requested resource" in absent.value.body


def test_the_service_proxy_answers_from_ready_pods_in_turn(quick, kube_client, apps, core, kube_namespace):
    quick.kubelet_mode = "manual"          # pods stay ContainerCreating: no endpoint yet
    web(apps, core, kube_namespace, replicas=2)
    with pytest.raises(ApiException) as unavailable:
        core.connect_get_namespaced_service_proxy_with_path("web", kube_namespace, "")
    assert unavailable.value.status == 503
    assert json.loads(unavailable.value.body)["message"] == 'no endpoints available for service "web"'
    quick.kubelet_mode = "auto"
    ready(apps, kube_namespace, 2)
    assert core.connect_get_namespaced_service_proxy_with_path("web:80", kube_namespace, "index.php") == "OK!"
    assert core.connect_post_namespaced_service_proxy_with_path("web:http", kube_namespace, "work") == "OK!"
    for _ in range(6):
        core.connect_get_namespaced_service_proxy_with_path("web", kube_namespace, "")
    # round robin: both pods served, so both use CPU
    time.sleep(0.2)
    usages = client.CustomObjectsApi(kube_client).list_namespaced_custom_object("metrics.k8s.io", "v1beta1", kube_namespace, "pods")
    assert all(int(item["containers"][0]["usage"]["cpu"][:-1]) > 1_000_000 for item in usages["items"])
    with pytest.raises(ApiException) as wrong_port:
        core.connect_get_namespaced_service_proxy_with_path("web:8081", kube_namespace, "")
    assert wrong_port.value.status == 503 and "no service port 8081" in wrong_port.value.body
    with pytest.raises(ApiException) as unknown:
        core.connect_get_namespaced_service_proxy_with_path("nothing", kube_namespace, "")
    assert unknown.value.status == 404


def test_the_service_proxy_needs_get_on_services_proxy(quick, kube_standin, apps, core, kube_namespace):
    web(apps, core, kube_namespace)
    ready(apps, kube_namespace, 1)
    token = kube_standin.issue_user_token("reader")
    rbac = client.RbacAuthorizationV1Api(kube_standin.api_client())
    rbac.create_namespaced_role(kube_namespace, {"metadata": {"name": "svc"}, "rules": [
        {"apiGroups": [""], "resources": ["services"], "verbs": ["get"]}]})
    rbac.create_namespaced_role_binding(kube_namespace, {"metadata": {"name": "svc"}, "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "svc"}, "subjects": [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "reader"}]})
    reader = client.CoreV1Api(kube_standin.api_client(token=token))
    with pytest.raises(ApiException) as refused:
        reader.connect_get_namespaced_service_proxy_with_path("web", kube_namespace, "")
    assert refused.value.status == 403
    assert 'cannot get resource "services/proxy" in API group ""' in json.loads(refused.value.body)["message"]
    rbac.patch_namespaced_role("svc", kube_namespace, {"rules": [
        {"apiGroups": [""], "resources": ["services", "services/proxy"], "verbs": ["get"]}]})
    assert reader.connect_get_namespaced_service_proxy_with_path("web", kube_namespace, "") == "OK!"


def test_the_hpa_scales_up_under_load_and_says_why(quick, kube_standin, apps, core, hpas, kube_namespace):
    web(apps, core, kube_namespace)
    hpa(hpas, kube_namespace, maximum=4)
    ready(apps, kube_namespace, 1)
    with Load(kube_standin, kube_namespace, clients=4):
        scaled = wait_for(lambda: (lambda h: h if (h.status.desired_replicas or 0) >= 2 else None)(
            hpas.read_namespaced_horizontal_pod_autoscaler("web", kube_namespace)), timeout=20, what="scale up")
        wait_for(lambda: apps.read_namespaced_deployment("web", kube_namespace).spec.replicas >= 2, what="deployment scaled")
    assert condition(scaled, "ScalingActive").reason == "ValidMetricFound"
    assert condition(scaled, "AbleToScale").status == "True"
    assert scaled.status.current_metrics[0].resource.current.average_utilization > 50
    assert scaled.status.last_scale_time is not None
    events = core.list_namespaced_event(kube_namespace, field_selector="reason=SuccessfulRescale").items
    assert any("cpu resource utilization (percentage of request) above target" in e.message for e in events)
    # The v1 view tells the same story.
    as_v1 = client.AutoscalingV1Api(hpas.api_client).read_namespaced_horizontal_pod_autoscaler("web", kube_namespace)
    assert as_v1.status.current_cpu_utilization_percentage is not None


def test_scale_up_follows_the_behaviour_policies_and_scale_down_waits_for_its_window(quick, kube_standin, apps, core, hpas, kube_namespace):
    web(apps, core, kube_namespace)
    # one pod per minute at most; scale down after 2 s of lower recommendations
    hpa(hpas, kube_namespace, maximum=6, target=10, behavior={
        "scaleUp": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]},
        "scaleDown": {"stabilizationWindowSeconds": 2, "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}})
    ready(apps, kube_namespace, 1)
    with Load(kube_standin, kube_namespace, clients=4):
        limited = wait_for(lambda: (lambda h: h if condition(h, "ScalingLimited") and condition(h, "ScalingLimited").reason == "ScaleUpLimit"
                                    else None)(hpas.read_namespaced_horizontal_pod_autoscaler("web", kube_namespace)),
                           timeout=20, what="rate-limited")
        assert limited.status.desired_replicas == 2
        time.sleep(2)
        assert apps.read_namespaced_deployment("web", kube_namespace).spec.replicas == 2
    down = wait_for(lambda: (lambda h: h if h.status.desired_replicas == 1 else None)(
        hpas.read_namespaced_horizontal_pod_autoscaler("web", kube_namespace)), timeout=20, what="scale down")
    assert "All metrics below target" in " ".join(e.message for e in core.list_namespaced_event(
        kube_namespace, field_selector="reason=SuccessfulRescale").items)
    assert condition(down, "ScalingActive").status == "True"


def test_without_metrics_or_requests_the_hpa_says_it_cannot_compute(quick, kube_standin, apps, core, hpas, kube_namespace):
    quick.metrics_server = False
    web(apps, core, kube_namespace)
    hpa(hpas, kube_namespace)
    ready(apps, kube_namespace, 1)
    off = wait_for(lambda: (lambda h: h if condition(h, "ScalingActive") else None)(
        hpas.read_namespaced_horizontal_pod_autoscaler("web", kube_namespace)), what="condition")
    active = condition(off, "ScalingActive")
    assert (active.status, active.reason) == ("False", "FailedGetResourceMetric")
    assert active.message.endswith("(get pods.metrics.k8s.io)")
    assert apps.read_namespaced_deployment("web", kube_namespace).spec.replicas == 1

    quick.metrics_server = True
    apps.patch_namespaced_deployment("web", kube_namespace, {"spec": {"template": {"spec": {"containers": [
        {"name": "php-apache", "resources": {"requests": None, "limits": None}}]}}}})
    hpas.patch_namespaced_horizontal_pod_autoscaler("web", kube_namespace, {"spec": {"maxReplicas": 5}})
    wait_for(lambda: "missing request for cpu in container php-apache of Pod web-" in (condition(
        hpas.read_namespaced_horizontal_pod_autoscaler("web", kube_namespace), "ScalingActive").message or ""),
        timeout=20, what="missing request")


def test_head_answers_without_a_body_and_a_v1_hpa_scales_too(quick, kube_standin, kube_client, apps, core, kube_namespace):
    web(apps, core, kube_namespace)
    client.AutoscalingV1Api(kube_client).create_namespaced_horizontal_pod_autoscaler(kube_namespace, {"metadata": {"name": "web"}, "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 3,
        "targetCPUUtilizationPercentage": 50}})
    ready(apps, kube_namespace, 1)
    params = kube_client.param_serialize(method="HEAD", resource_path=f"/api/v1/namespaces/{kube_namespace}/services/web/proxy/",
                                         auth_settings=["BearerToken"])
    head = kube_client.call_api(*params)
    head.read()
    assert head.status == 200 and head.data == b"" and head.getheader("Content-Type").startswith("text/html")
    with Load(kube_standin, kube_namespace, clients=4):
        wait_for(lambda: apps.read_namespaced_deployment("web", kube_namespace).spec.replicas >= 2, timeout=20, what="v1 HPA scales")
    as_v1 = client.AutoscalingV1Api(kube_client).read_namespaced_horizontal_pod_autoscaler("web", kube_namespace)
    assert as_v1.status.desired_replicas >= 2 and as_v1.status.current_cpu_utilization_percentage > 50
