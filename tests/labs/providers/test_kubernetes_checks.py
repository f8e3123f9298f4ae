"""The kubernetes.* check types on their own: what they see, what they say, one GET each,
and only in the environment's namespace. Against the stand-in, or FILROUGE_TEST_KUBECONFIG."""

import pytest
from kubernetes import client as k8s

from labs.checks import CHECKS, load_all
from labs.checks.base import CheckTarget

pytestmark = [pytest.mark.django_db, pytest.mark.k8s]


@pytest.fixture
def target(kube_target):
    load_all()
    return CheckTarget(environment=None, kube=kube_target.api_client(), namespace=kube_target.namespace)


def run(check_type, check_target, **params):
    return CHECKS[check_type](params, check_target)


def web_service(namespace, api_client, **spec):
    body = {"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}], **spec}}
    return k8s.CoreV1Api(api_client).create_namespaced_service(namespace, body)


def test_it_reads_one_object_with_one_get_in_the_environment_namespace_only(kube_target, target):
    core = k8s.CoreV1Api(kube_target.api_client())
    elsewhere_namespace = kube_target.namespace + "-other"
    core.create_namespace({"metadata": {"name": elsewhere_namespace, "labels": {"filrouge.test": "true"}}})
    try:
        core.create_namespaced_config_map(elsewhere_namespace, {"metadata": {"name": "settings-elsewhere"}, "data": {"a": "1"}})
        core.create_namespaced_config_map(kube_target.namespace, {"metadata": {"name": "settings"}, "data": {"mode": "production"}})
        if kube_target.api is not None:
            kube_target.api.reset_request_log()
        outcome = run("kubernetes.object", target, kind="ConfigMap", name="settings", conditions=[{"field": "data.mode", "op": "==", "value": "production"}])
        assert outcome.passed, outcome.detail
        if kube_target.api is not None:
            assert kube_target.api.request_log == [("GET", f"/api/v1/namespaces/{kube_target.namespace}/configmaps/settings")]
        elsewhere = run("kubernetes.object", target, kind="ConfigMap", name="settings-elsewhere")
        assert not elsewhere.passed
        assert elsewhere.detail == f"No ConfigMap named settings-elsewhere in namespace {kube_target.namespace}."
    finally:
        core.delete_namespace(elsewhere_namespace)


def test_it_compares_numbers_as_numbers_and_says_what_it_saw(kube_target, target):
    k8s.CoreV1Api(kube_target.api_client()).create_namespaced_config_map(
        kube_target.namespace, {"metadata": {"name": "app", "annotations": {"example.com/replicas": "10"}}, "data": {"list": "a,b"}})
    annotation = 'metadata.annotations["example.com/replicas"]'
    assert run("kubernetes.object", target, kind="ConfigMap", name="app", conditions=[{"field": annotation, "op": ">", "value": 9}]).passed
    low = run("kubernetes.object", target, kind="ConfigMap", name="app", conditions=[{"field": annotation, "op": "<", "value": 9}])
    assert (low.passed, low.detail) == (False, f"ConfigMap app: {annotation} is 10, needs < 9.")
    assert run("kubernetes.object", target, kind="ConfigMap", name="app", conditions=[{"field": "data.list", "op": "contains", "value": "b"}]).passed
    missing = run("kubernetes.object", target, kind="ConfigMap", name="app", conditions=[{"field": "status.readyReplicas", "op": ">=", "value": 1}])
    assert (missing.passed, missing.detail) == (False, "ConfigMap app: status.readyReplicas is not set (needs >= 1).")


def test_it_checks_service_ports_and_node_ports(kube_target, target):
    admin = kube_target.api_client()
    web_service(kube_target.namespace, admin)
    assert run("kubernetes.service_port", target, name="web", port=80, target_port=8080, node_port=False).passed
    wrong = run("kubernetes.service_port", target, name="web", port=80, target_port=9090)
    assert (wrong.passed, wrong.detail) == (False, "Service web sends port 80 to 8080, needs 9090.")
    absent_port = run("kubernetes.service_port", target, name="web", port=443)
    assert (absent_port.passed, absent_port.detail) == (False, "Service web has no port 443 (it has 80).")
    needs_node_port = run("kubernetes.service_port", target, name="web", port=80, node_port=True)
    assert (needs_node_port.passed, needs_node_port.detail) == (False, "Service web is ClusterIP, needs a node port.")


def test_it_checks_an_hpa_within_ranges(kube_target, target):
    k8s.AutoscalingV2Api(kube_target.api_client()).create_namespaced_horizontal_pod_autoscaler(kube_target.namespace, {
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "minReplicas": 2, "maxReplicas": 5,
                 "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 90}}}]},
    })
    good = run("kubernetes.hpa", target, name="web", target="web", min_replicas=[2, 3], max_replicas=[4, 8])
    assert (good.passed, good.detail) == (True, "HPA web: scales web; minReplicas is 2; maxReplicas is 5.")
    bad = run("kubernetes.hpa", target, name="web", target="api", cpu_target=[50, 80])
    assert (bad.passed, bad.detail) == (False, "HPA web: scales web, not api; CPU target is 90 %, needs 50 to 80 %.")


def test_it_needs_an_api_version_for_a_kind_it_does_not_know(target):
    from clusters.drivers.base import DriverError

    with pytest.raises(DriverError, match="give its api_version"):
        run("kubernetes.object", target, kind="Certificate", name="web")
