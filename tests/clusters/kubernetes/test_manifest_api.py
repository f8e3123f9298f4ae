"""API: namespaces, manifests and isolated namespaces — who may do what."""

import pytest
import yaml

from clusters.models import IsolatedNamespaceRecord, ManifestSet
from panel.audit.models import AuditEvent
from panel.jobs.models import Job
from tests.fixtures.actors import api_client


CONFIGMAP = "apiVersion: v1\nkind: Secret\nmetadata: {name: a}\nstringData: {token: do-not-leak-me}\n"


@pytest.fixture
def kube_cluster(db):
    from clusters.models import Cluster

    return Cluster.objects.create(name="kube", kind="kubernetes", endpoint="https://127.0.0.1:6443")


def test_an_operator_starts_manifest_jobs_and_the_text_stays_out_of_the_job(kube_cluster, bob):
    client = api_client(bob)
    for action in ("validate", "diff", "apply"):
        response = client.post(f"/api/clusters/{kube_cluster.pk}/manifests/{action}/", {"namespace": "team-a", "manifests": CONFIGMAP}, format="json")
        assert response.status_code == 202, response.content
        assert response.json()["kind"] == f"kube-manifests-{action}"
        assert "do-not-leak-me" not in response.content.decode()
    job = Job.objects.get(pk=response.json()["id"])
    stored = ManifestSet.objects.get(pk=job.params["manifest_set"])
    assert stored.namespace == "team-a" and "do-not-leak-me" not in stored.text_encrypted
    assert stored.get_sources() == [("pasted.yaml", CONFIGMAP)]
    detail = client.get(f"/api/jobs/{job.pk}/")
    assert "do-not-leak-me" not in detail.content.decode()


def test_manifest_requests_are_validated(kube_cluster, bob):
    client = api_client(bob)
    assert client.post(f"/api/clusters/{kube_cluster.pk}/manifests/apply/", {"namespace": "Bad_NS", "manifests": CONFIGMAP}, format="json").status_code == 400
    assert client.post(f"/api/clusters/{kube_cluster.pk}/manifests/apply/", {"namespace": "ok"}, format="json").status_code == 400
    assert client.post(f"/api/clusters/{kube_cluster.pk}/manifests/explode/", {"namespace": "ok", "manifests": CONFIGMAP}, format="json").status_code == 404


def test_students_and_people_without_a_role_cannot_use_cluster_endpoints(kube_cluster, sam, charlie):
    for user in (sam, charlie):
        client = api_client(user)
        assert client.post(f"/api/clusters/{kube_cluster.pk}/manifests/apply/", {"namespace": "a", "manifests": CONFIGMAP}, format="json").status_code == 403
        assert client.get(f"/api/clusters/{kube_cluster.pk}/namespaces/").status_code == 403
        assert client.post(f"/api/clusters/{kube_cluster.pk}/isolated-namespaces/", {"name": "x"}, format="json").status_code == 403
    assert not ManifestSet.objects.exists() and not IsolatedNamespaceRecord.objects.exists()


def test_namespaces_come_from_the_last_namespaces_job(kube_cluster, bob):
    client = api_client(bob)
    assert client.get(f"/api/clusters/{kube_cluster.pk}/namespaces/").json() == {"namespaces": [], "source": "none", "job": None}
    started = client.post(f"/api/clusters/{kube_cluster.pk}/namespaces/")
    assert started.status_code == 202 and started.json()["kind"] == "kube-namespaces"
    Job.objects.filter(pk=started.json()["id"]).update(status="succeeded", result={"namespaces": [{"name": "b"}, {"name": "a"}]})
    assert client.get(f"/api/clusters/{kube_cluster.pk}/namespaces/").json() == {"namespaces": ["a", "b"], "source": "job", "job": started.json()["id"]}


def test_an_operator_creates_an_isolated_namespace_for_a_student(kube_cluster, bob, sam):
    response = api_client(bob).post(f"/api/clusters/{kube_cluster.pk}/isolated-namespaces/", {"name": "sam-lab", "owner": "sam", "quota": {"pods": 5}}, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["namespace"]["owner"] == "sam" and body["namespace"]["state"] == "pending" and body["namespace"]["quota"] == {"pods": "5"}
    assert body["job"]["kind"] == "kube-isolated-namespace-create"
    again = api_client(bob).post(f"/api/clusters/{kube_cluster.pk}/isolated-namespaces/", {"name": "sam-lab"}, format="json")
    assert again.status_code == 409


def test_owners_see_and_renew_their_namespace_others_do_not(kube_cluster, bob, sam, dave, charlie):
    record = IsolatedNamespaceRecord.objects.create(cluster=kube_cluster, name="sam-lab", owner=sam, state="ready")
    assert api_client(sam).get(f"/api/isolated-namespaces/{record.pk}/").status_code == 200
    assert api_client(sam).post(f"/api/isolated-namespaces/{record.pk}/renew/").status_code == 202
    assert api_client(sam).delete(f"/api/isolated-namespaces/{record.pk}/").status_code == 403
    for user in (dave, charlie):
        assert api_client(user).get(f"/api/isolated-namespaces/{record.pk}/").status_code == 404
        assert api_client(user).post(f"/api/isolated-namespaces/{record.pk}/renew/").status_code == 404
    assert api_client(bob).delete(f"/api/isolated-namespaces/{record.pk}/").status_code == 202


def test_the_kubeconfig_download_is_for_the_owner_or_an_admin_and_audited(kube_cluster, alice, bob, sam, dave):
    from datetime import timedelta

    from django.utils import timezone

    record = IsolatedNamespaceRecord.objects.create(cluster=kube_cluster, name="sam-lab", owner=sam, state="ready", token_expires_at=timezone.now() + timedelta(hours=1))
    record.set_kubeconfig({"apiVersion": "v1", "kind": "Config", "users": [{"name": "u", "user": {"token": "tok-123"}}], "clusters": [], "contexts": []})
    record.save()
    url = f"/api/isolated-namespaces/{record.pk}/kubeconfig/"
    assert api_client(bob).get(url).status_code == 403  # an operator who is not the owner
    assert api_client(dave).get(url).status_code == 404
    for user in (sam, alice):
        response = api_client(user).get(url)
        assert response.status_code == 200 and response["Cache-Control"] == "no-store"
        assert yaml.safe_load(response.content)["users"][0]["user"]["token"] == "tok-123"
    events = AuditEvent.objects.filter(object_id=str(record.pk), message__contains="Kubeconfig")
    assert sorted(events.values_list("username", flat=True)) == ["alice", "sam"]
    assert "tok-123" not in str(list(AuditEvent.objects.values_list("before", "after", "message")))
    assert api_client(bob).get(f"/api/isolated-namespaces/{record.pk}/").json()["token_valid"] is True
