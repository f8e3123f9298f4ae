"""Each fault during a deploy ends in a failed job with a message a person can act on."""

import pytest
from kubernetes import client as k8s

from deployments.models import Service

from tests.support.kube_jobs import deploy, failed, free_port, job_text, kube_service, kubeconfig_cluster, succeeded, token_cluster, with_token

pytestmark = [pytest.mark.k8s, pytest.mark.django_db(transaction=True)]

APPLY = "application/apply-patch+yaml"


def on_cluster(service, cluster):
    Service.objects.filter(pk=service.pk).update(cluster=cluster)
    service.refresh_from_db()
    return service


def test_an_unreachable_cluster_fails_the_deploy(kube_target, bob):
    service = on_cluster(kube_service(kube_target), token_cluster(f"https://127.0.0.1:{free_port()}", "token"))
    job = failed(deploy(service, bob))
    assert "Cannot reach" in job.error


def test_an_expired_token_fails_the_deploy(kube_target, bob):
    kube_target.require_standin("expire_token")
    token = kube_target.api.issue_user_token("deployer", groups=("system:masters",))
    kube_target.api.expire_token(token)
    service = on_cluster(kube_service(kube_target), kubeconfig_cluster(with_token(kube_target.kubeconfig_text, token)))
    job = failed(deploy(service, bob))
    assert "401 Unauthorized" in job.error and token not in job.error


def test_an_expired_certificate_fails_the_deploy(kube_target, bob):
    kube_target.require_standin("make_expired_ca_kubeconfig")
    service = on_cluster(kube_service(kube_target), kubeconfig_cluster(kube_target.api.make_expired_ca_kubeconfig()))
    job = failed(deploy(service, bob))
    assert "has expired" in job.error


def test_a_403_names_the_verb_and_resource(kube_target, bob):
    kubeconfig = kube_target.limited_kubeconfig([
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["services", "pods"], "verbs": ["get", "list", "patch"]},
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list"]},
    ])
    service = on_cluster(kube_service(kube_target), kubeconfig_cluster(kubeconfig))
    job = failed(deploy(service, bob))
    assert "forbids it (403)" in job.error
    assert 'cannot patch resource "deployments"' in job.error
    assert "RBAC" in job.error


def test_a_conflict_with_another_field_manager_names_that_manager(kube_target, bob):
    service = kube_service(kube_target, replicas=2)
    succeeded(deploy(service, bob))
    apps = k8s.AppsV1Api(kube_target.api_client())
    # Another tool takes over the replica count with its own apply.
    apps.patch_namespaced_deployment("web", kube_target.namespace, {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 3}},
                                     field_manager="helm", force=True, _content_type=APPLY)

    job = failed(deploy(service, bob))

    assert "Another field manager owns fields of Deployment" in job.error and "--force-conflicts --field-manager=filrouge" in job.error
    assert '"helm"' in job.error and ".spec.replicas" in job.error
    assert apps.read_namespaced_deployment("web", kube_target.namespace).spec.replicas == 3


def test_an_exceeded_quota_fails_with_the_quota_message(kube_target, bob):
    core = k8s.CoreV1Api(kube_target.api_client())
    core.create_namespaced_resource_quota(kube_target.namespace, {"metadata": {"name": "small"}, "spec": {"hard": {"pods": "1"}}})
    service = kube_service(kube_target, replicas=3)

    job = failed(deploy(service, bob))

    assert "exceeded quota" in job.error and "small" in job.error
    assert "ask for a larger quota" in job.error


def test_a_quota_refusing_an_object_fails_the_apply(kube_target, bob):
    core = k8s.CoreV1Api(kube_target.api_client())
    core.create_namespaced_resource_quota(kube_target.namespace, {"metadata": {"name": "no-services"}, "spec": {"hard": {"services": "0"}}})
    job = failed(deploy(kube_service(kube_target, replicas=1), bob))
    assert "The namespace quota refused it" in job.error and "exceeded quota" in job.error


def test_a_server_error_fails_the_deploy_with_its_status(kube_target, bob):
    kube_target.require_standin("inject_fault")
    kube_target.api.inject_fault(status=503, count=1, method="PATCH", path_prefix=f"/apis/apps/v1/namespaces/{kube_target.namespace}/deployments", message="apiserver is shutting down")
    job = failed(deploy(kube_service(kube_target), bob))
    assert "HTTP 503" in job.error and "apiserver is shutting down" in job.error


def test_a_slow_api_fails_the_deploy_with_a_timeout(kube_target, bob, settings):
    kube_target.require_standin("inject_fault")
    settings.KUBE_READ_TIMEOUT = 1
    kube_target.api.inject_fault(status=None, delay=3, count=1, method="PATCH", path_prefix=f"/apis/apps/v1/namespaces/{kube_target.namespace}/deployments")
    job = failed(deploy(kube_service(kube_target), bob))
    assert "did not answer in time" in job.error
    assert "applied Deployment" not in job_text(job)
