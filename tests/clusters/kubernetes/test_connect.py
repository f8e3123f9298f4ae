"""The connect test of a Kubernetes cluster: its version, or a clear reason."""

import pytest

from clusters.models import Cluster
from panel.jobs.services import start_job

from tests.support.kube import both_credential_shapes
from tests.support.kube_jobs import free_port, job_text, kubeconfig_cluster, run_job, token_cluster, with_token

pytestmark = [pytest.mark.k8s, pytest.mark.django_db(transaction=True)]


def connect_test(cluster, user):
    return run_job(start_job("kube-connect-test", {}, user, target=cluster))


@both_credential_shapes
def test_it_reports_the_server_version(kube_target, bob):
    job = connect_test(kube_target.cluster, bob)
    assert job.status == "succeeded", job.error
    cluster = Cluster.objects.get(pk=kube_target.cluster.pk)
    assert cluster.reachable is True and cluster.version.startswith("v1.")
    assert f"Kubernetes {cluster.version}" in job_text(job)
    assert "may list pods in namespace" in job_text(job)
    kube_target.assert_no_secret_in(job_text(job) + str(job.result) + (job.error or ""))


def test_it_connects_with_an_api_url_a_token_and_a_ca(kube_target, bob):
    kube_target.require_standin("the stand-in's admin token")
    api = kube_target.api
    cluster = token_cluster(api.url, api.admin_token, api.ca_pem)
    job = connect_test(cluster, bob)
    assert job.status == "succeeded", job.error
    assert api.admin_token not in job_text(job)


def test_an_unreachable_api_is_reported_as_such(bob, db):
    cluster = token_cluster(f"https://127.0.0.1:{free_port()}", "some-token")
    job = connect_test(cluster, bob)
    assert job.status == "failed"
    assert "Cannot reach" in job.error and "Is the API server running" in job.error
    assert Cluster.objects.get(pk=cluster.pk).reachable is False


def test_an_expired_certificate_is_reported(kube_target, bob):
    kube_target.require_standin("make_expired_ca_kubeconfig")
    job = connect_test(kubeconfig_cluster(kube_target.api.make_expired_ca_kubeconfig()), bob)
    assert job.status == "failed"
    assert "has expired" in job.error and "certificate" in job.error


def test_an_unknown_certificate_authority_is_reported(kube_target, bob):
    kube_target.require_standin("make_wrong_ca_kubeconfig")
    job = connect_test(kubeconfig_cluster(kube_target.api.make_wrong_ca_kubeconfig()), bob)
    assert job.status == "failed"
    assert "cannot be verified" in job.error and "Check the CA" in job.error


def test_a_wrong_token_is_a_401(kube_target, bob):
    job = connect_test(kubeconfig_cluster(with_token(kube_target.kubeconfig_text, "not-a-valid-token")), bob)
    assert job.status == "failed"
    assert "401 Unauthorized" in job.error and "Update the cluster's credential" in job.error


def test_an_expired_token_is_a_401(kube_target, bob):
    kube_target.require_standin("expire_token")
    token = kube_target.api.issue_user_token("expiring-user", groups=("system:masters",))
    cluster = kubeconfig_cluster(with_token(kube_target.kubeconfig_text, token))
    assert connect_test(cluster, bob).status == "succeeded"
    kube_target.api.expire_token(token)
    job = connect_test(cluster, bob)
    assert job.status == "failed" and "401" in job.error


def test_a_credential_without_rights_is_a_403(kube_target, bob):
    kubeconfig = kube_target.limited_kubeconfig([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}])
    cluster = kubeconfig_cluster(kubeconfig)
    cluster.default_namespace = kube_target.namespace
    cluster.save()
    job = connect_test(cluster, bob)
    assert job.status == "failed"
    assert "forbids it (403)" in job.error and 'cannot list resource "pods"' in job.error


def test_a_server_error_is_reported_with_its_status(kube_target, bob):
    kube_target.require_standin("inject_fault")
    kube_target.api.inject_fault(status=500, count=1, path_prefix="/version", message="etcd is down")
    job = connect_test(kube_target.cluster, bob)
    assert job.status == "failed"
    assert "HTTP 500" in job.error and "etcd is down" in job.error


def test_a_slow_api_is_a_timeout(kube_target, bob, settings):
    kube_target.require_standin("inject_fault")
    settings.KUBE_READ_TIMEOUT = 1
    kube_target.api.inject_fault(status=None, count=1, path_prefix="/version", delay=3)
    job = connect_test(kube_target.cluster, bob)
    assert job.status == "failed"
    assert "did not answer in time" in job.error


def test_only_operators_may_start_it(kube_target, charlie):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        start_job("kube-connect-test", {}, charlie, target=kube_target.cluster)
