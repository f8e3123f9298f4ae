"""Isolated namespaces: the job, the kubeconfig's permissions, the quota, the delete."""

import uuid

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes import config as kube_config
from kubernetes.client.rest import ApiException

from clusters.models import IsolatedNamespaceRecord

from tests.clusters.kubernetes.conftest import job_lines, run_kind

pytestmark = pytest.mark.django_db(transaction=True)

DEPLOYMENT = {
    "metadata": {"name": "web"},
    "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "IMAGE"}]}}},
}


@pytest.fixture
def isolated(kube_target, bob, sam):
    """An isolated namespace made by the create job (owned by sam), deleted afterwards."""
    record = IsolatedNamespaceRecord.objects.create(
        cluster=kube_target.cluster, name=f"iso-{uuid.uuid4().hex[:8]}", owner=sam, created_by=bob,
        quota={"pods": "2", "requests.cpu": "1", "requests.memory": "1Gi", "limits.cpu": "2", "limits.memory": "2Gi"},
        labels={"filrouge.test": "true"},
    )
    job = run_kind(bob, "kube-isolated-namespace-create", record)
    assert job.status == "succeeded", (job.error, job_lines(job))
    record.refresh_from_db()
    yield record, job
    try:
        k8s.CoreV1Api(kube_target.api_client()).delete_namespace(record.name)
    except ApiException as err:
        assert err.status == 404


def student_client(record):
    return kube_config.new_client_from_config_dict(record.get_kubeconfig())


def test_the_kubeconfig_works_inside_its_namespace(kube_target, isolated):
    record, job = isolated
    assert record.state == "ready" and record.token_valid and record.service_account == "workspace"
    body = {**DEPLOYMENT}
    body["spec"]["template"]["spec"]["containers"][0]["image"] = kube_target.image("1")
    with student_client(record) as api_client:
        k8s.AppsV1Api(api_client).create_namespaced_deployment(record.name, body)
        kube_target.wait_for(lambda: len(k8s.CoreV1Api(api_client).list_namespaced_pod(record.name).items) == 2, message="two pods (the quota allows two)")
    token = record.get_kubeconfig()["users"][0]["user"]["token"]
    assert token not in job_lines(job) and token not in str(job.result)


def test_the_kubeconfig_is_forbidden_outside_its_namespace(kube_target, isolated):
    record, _job = isolated
    with student_client(record) as api_client:
        core = k8s.CoreV1Api(api_client)
        for call in (lambda: core.list_namespaced_pod(kube_target.namespace), lambda: core.list_namespace(), lambda: k8s.CoreV1Api(api_client).list_node()):
            with pytest.raises(ApiException) as caught:
                call()
            assert caught.value.status == 403


def test_the_quota_is_enforced(kube_target, isolated):
    record, _job = isolated
    pod = {"metadata": {"name": "p{}"}, "spec": {"containers": [{"name": "c", "image": kube_target.image("1")}]}}
    with student_client(record) as api_client:
        core = k8s.CoreV1Api(api_client)
        for index in range(2):
            core.create_namespaced_pod(record.name, {**pod, "metadata": {"name": f"p{index}"}})
        with pytest.raises(ApiException) as caught:
            core.create_namespaced_pod(record.name, {**pod, "metadata": {"name": "p2"}})
    assert caught.value.status == 403 and "exceeded quota" in caught.value.body
    limits = k8s.CoreV1Api(kube_target.api_client()).read_namespaced_pod("p0", record.name).spec.containers[0].resources.limits
    assert limits == {"cpu": "500m", "memory": "256Mi"}  # the LimitRange defaults


def test_renew_gives_a_new_token_and_delete_removes_everything(kube_target, isolated, bob, sam):
    record, _job = isolated
    old = record.get_kubeconfig()["users"][0]["user"]["token"]
    renewed = run_kind(sam, "kube-isolated-namespace-renew", record)  # the owner may renew
    assert renewed.status == "succeeded", renewed.error
    record.refresh_from_db()
    assert record.get_kubeconfig()["users"][0]["user"]["token"] != old
    deleted = run_kind(bob, "kube-isolated-namespace-delete", record)
    assert deleted.status == "succeeded", deleted.error
    record.refresh_from_db()
    assert record.state == "deleted" and record.kubeconfig_encrypted == ""
    admin = kube_target.api_client()
    with pytest.raises(ApiException) as caught:
        k8s.CoreV1Api(admin).read_namespace(record.name)
    assert caught.value.status == 404
    assert [rb for rb in k8s.RbacAuthorizationV1Api(admin).list_role_binding_for_all_namespaces().items if rb.metadata.namespace == record.name] == []
    again = run_kind(bob, "kube-isolated-namespace-delete", record)
    assert again.status == "succeeded" and again.result == {"namespace": record.name, "deleted": False}


def test_it_refuses_to_take_over_a_namespace_it_did_not_make(kube_target, bob):
    record = IsolatedNamespaceRecord.objects.create(cluster=kube_target.cluster, name=kube_target.namespace, owner=bob)
    job = run_kind(bob, "kube-isolated-namespace-create", record)
    assert job.status == "failed" and "was not made by the panel" in job.error
    record.refresh_from_db()
    assert record.state == "failed" and "was not made by the panel" in record.last_error


def test_the_kubeconfig_is_one_kubectl_reads(isolated):
    record, _job = isolated
    config = yaml.safe_load(yaml.safe_dump(record.get_kubeconfig()))
    assert config["contexts"][0]["context"]["namespace"] == record.name
    assert config["clusters"][0]["cluster"]["certificate-authority-data"]


def test_the_api_servers_addresses_may_reach_the_pods_for_the_service_proxy(kube_target, bob, sam, settings):
    settings.KUBE_APISERVER_CIDRS = ("10.0.0.10/32",)
    record = IsolatedNamespaceRecord.objects.create(cluster=kube_target.cluster, name=f"iso-{uuid.uuid4().hex[:8]}", owner=sam, created_by=bob)
    job = run_kind(bob, "kube-isolated-namespace-create", record)
    assert job.status == "succeeded", (job.error, job_lines(job))
    try:
        policy = k8s.NetworkingV1Api(kube_target.api_client()).read_namespaced_network_policy("isolate-namespace", record.name)
        peers = policy.spec.ingress[0]._from
        assert peers[0].pod_selector is not None and peers[1].ip_block.cidr == "10.0.0.10/32"
        # and the namespace's own token may use the service proxy and read its pods' metrics
        record.refresh_from_db()
        review = k8s.AuthorizationV1Api(student_client(record)).create_self_subject_access_review({"spec": {"resourceAttributes": {
            "namespace": record.name, "verb": "get", "resource": "services", "subresource": "proxy"}}})
        assert review.status.allowed
    finally:
        k8s.CoreV1Api(kube_target.api_client()).delete_namespace(record.name)


def test_the_api_servers_addresses_are_written_as_cidrs_the_api_server_accepts(kube_target, bob, sam, settings):
    # A bare address is refused by a real API server (ipBlock.cidr: "must be a valid CIDR value"),
    # so the panel writes it as /32; host bits are cleared.
    settings.KUBE_APISERVER_CIDRS = ("10.0.0.10", "192.168.7.9/16", "fd00::1")
    record = IsolatedNamespaceRecord.objects.create(cluster=kube_target.cluster, name=f"iso-{uuid.uuid4().hex[:8]}", owner=sam, created_by=bob)
    job = run_kind(bob, "kube-isolated-namespace-create", record)
    assert job.status == "succeeded", (job.error, job_lines(job))
    try:
        policy = k8s.NetworkingV1Api(kube_target.api_client()).read_namespaced_network_policy("isolate-namespace", record.name)
        assert [peer.ip_block.cidr for peer in policy.spec.ingress[0]._from[1:]] == ["10.0.0.10/32", "192.168.0.0/16", "fd00::1/128"]
    finally:
        k8s.CoreV1Api(kube_target.api_client()).delete_namespace(record.name)

    settings.KUBE_APISERVER_CIDRS = ("10.0.0.300/32",)
    broken = IsolatedNamespaceRecord.objects.create(cluster=kube_target.cluster, name=f"iso-{uuid.uuid4().hex[:8]}", owner=sam, created_by=bob)
    job = run_kind(bob, "kube-isolated-namespace-create", broken)
    try:
        assert job.status == "failed" and "FILROUGE_KUBE_APISERVER_CIDRS: '10.0.0.300/32' is neither an IP address nor a CIDR" in job.error
    finally:
        try:
            k8s.CoreV1Api(kube_target.api_client()).delete_namespace(broken.name)
        except ApiException as err:
            assert err.status == 404


def test_an_ip_block_that_is_not_a_cidr_is_refused_as_the_api_server_does(kube_target):
    # Holds on a real API server too: that is what the stand-in copies.
    import json

    policy = {"metadata": {"name": "bare"}, "spec": {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.10"}}]}]}}
    with pytest.raises(ApiException) as refused:
        k8s.NetworkingV1Api(kube_target.api_client()).create_namespaced_network_policy(kube_target.namespace, policy)
    assert refused.value.status == 422
    assert 'spec.ingress[0].from[0].ipBlock.cidr: Invalid value: "10.0.0.10": must be a valid CIDR value' in json.loads(refused.value.body)["message"]
