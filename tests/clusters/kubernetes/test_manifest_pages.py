"""The Manifests and Isolated namespaces pages: access, forms, and the link on the cluster page."""

import pytest

from clusters.models import Cluster, IsolatedNamespaceRecord, ManifestSet
from panel.jobs.models import Job
from tests.fixtures.actors import logged_in


@pytest.fixture
def kube_cluster(db):
    return Cluster.objects.create(name="kube", kind="kubernetes", endpoint="https://127.0.0.1:6443")


def test_the_links_partial_points_to_manifests_and_namespaces_for_kubernetes_only(kube_cluster):
    # The Kubernetes cluster page includes this partial with one line (see the report: the
    # page itself belongs to the k8s branch).
    from django.template.loader import render_to_string

    links = render_to_string("clusters/partials/kube_links.html", {"cluster": kube_cluster})
    assert f"/inventory/clusters/{kube_cluster.pk}/manifests/" in links and f"/inventory/clusters/{kube_cluster.pk}/namespaces/" in links
    docker = Cluster.objects.create(name="engine", kind="docker", endpoint="unix:///var/run/docker.sock")
    assert render_to_string("clusters/partials/kube_links.html", {"cluster": docker}).strip() == ""


def test_an_operator_posts_manifests_and_gets_the_job_panel(kube_cluster, bob):
    client = logged_in(bob)
    response = client.post(f"/inventory/clusters/{kube_cluster.pk}/manifests/", {"namespace": "team", "manifests": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n", "action": "diff"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    job = Job.objects.get(kind="kube-manifests-diff")
    assert 'id="manifest-job"' in response.content.decode() and f"/manifests/jobs/{job.pk}/" in response.content.decode()
    assert ManifestSet.objects.get(pk=job.params["manifest_set"]).namespace == "team"
    assert client.get(f"/inventory/clusters/{kube_cluster.pk}/manifests/jobs/{job.pk}/").status_code == 200


def test_a_bad_form_says_what_is_wrong(kube_cluster, bob):
    response = logged_in(bob).post(f"/inventory/clusters/{kube_cluster.pk}/manifests/", {"namespace": "Bad NS", "manifests": "", "action": "apply"})
    assert response.status_code == 400
    text = response.content.decode()
    assert "lower-case letters" in text and "Paste manifests or choose files." in text
    assert not Job.objects.exists()


def test_students_and_no_role_cannot_open_the_pages(kube_cluster, sam, charlie):
    for user in (sam, charlie):
        client = logged_in(user)
        assert client.get(f"/inventory/clusters/{kube_cluster.pk}/manifests/").status_code == 403
        assert client.get(f"/inventory/clusters/{kube_cluster.pk}/namespaces/").status_code == 403


def test_an_operator_creates_an_isolated_namespace_from_the_page(kube_cluster, bob, sam):
    client = logged_in(bob)
    response = client.post(f"/inventory/clusters/{kube_cluster.pk}/namespaces/", {"name": "sam-lab", "owner": "sam", "quota_pods": "5", "token_seconds": "3600"})
    assert response.status_code == 302
    record = IsolatedNamespaceRecord.objects.get(name="sam-lab")
    assert record.owner == sam and record.quota == {"pods": "5"}
    assert Job.objects.filter(kind="kube-isolated-namespace-create").count() == 1
    page = client.get(f"/inventory/clusters/{kube_cluster.pk}/namespaces/").content.decode()
    assert "sam-lab" in page
    assert client.get(f"/inventory/isolated-namespaces/{record.pk}/kubeconfig/").status_code == 403


def test_the_namespaces_page_lists_the_observed_namespaces_and_reads_them_on_demand(kube_cluster, bob):
    Cluster.objects.filter(pk=kube_cluster.pk).update(observed={"namespaces": [{"name": "default"}, {"name": "shop"}]})
    client = logged_in(bob)
    assert "default, shop" in client.get(f"/inventory/clusters/{kube_cluster.pk}/namespaces/").content.decode()
    response = client.post(f"/inventory/clusters/{kube_cluster.pk}/namespaces/", {"refresh": "1"})
    job = Job.objects.get(kind="kube-namespaces")
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"


def test_uploaded_files_are_stored_with_their_names(kube_cluster, bob):
    from django.core.files.uploadedfile import SimpleUploadedFile

    files = [SimpleUploadedFile("app.yaml", b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"), SimpleUploadedFile("hpa.yaml", b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n")]
    response = logged_in(bob).post(f"/inventory/clusters/{kube_cluster.pk}/manifests/", {"namespace": "team", "manifests": "", "action": "validate", "files": files})
    job = Job.objects.get(kind="kube-manifests-validate")
    assert response.status_code == 302 and response["Location"].endswith(f"/manifests/?job={job.pk}")
    assert ManifestSet.objects.get(pk=job.params["manifest_set"]).source_names == ["app.yaml", "hpa.yaml"]
    page = logged_in(bob).get(response["Location"]).content.decode()
    assert 'id="manifest-job"' in page


def test_the_owner_downloads_the_kubeconfig_from_the_page_and_it_is_audited(kube_cluster, sam, dave):
    from datetime import timedelta

    from django.utils import timezone

    from panel.audit.models import AuditEvent

    record = IsolatedNamespaceRecord(cluster=kube_cluster, name="sam-lab", owner=sam, state="ready", token_expires_at=timezone.now() + timedelta(hours=1))
    record.set_kubeconfig({"apiVersion": "v1", "kind": "Config", "users": [{"name": "u", "user": {"token": "tok-page"}}]})
    record.save()
    response = logged_in(sam).get(f"/inventory/isolated-namespaces/{record.pk}/kubeconfig/")
    assert response.status_code == 200 and b"tok-page" in response.content
    assert response["Content-Disposition"] == 'attachment; filename="sam-lab.kubeconfig.yaml"'
    assert AuditEvent.objects.filter(username="sam", object_id=str(record.pk)).exists()
    assert logged_in(dave).get(f"/inventory/isolated-namespaces/{record.pk}/kubeconfig/").status_code == 404


def test_the_namespaces_form_asks_for_a_workspace_and_offers_its_terminal_and_an_update(kube_cluster, bob, sam):
    client = logged_in(bob)
    page = client.get(f"/inventory/clusters/{kube_cluster.pk}/namespaces/").content.decode()
    assert '<input type="checkbox" id="id_workspace" name="workspace" value="1">' in page and '<label for="id_workspace">' in page
    response = client.post(f"/inventory/clusters/{kube_cluster.pk}/namespaces/", {"name": "sam-ws", "owner": "sam", "workspace": "1", "token_seconds": "3600"})
    assert response.status_code == 302
    record = IsolatedNamespaceRecord.objects.get(name="sam-ws")
    assert record.workspace is True and Job.objects.filter(kind="kube-isolated-namespace-create", target_id=str(record.pk)).exists()

    IsolatedNamespaceRecord.objects.filter(pk=record.pk).update(state="ready")
    page = client.get(f"/inventory/clusters/{kube_cluster.pk}/namespaces/").content.decode()
    assert f"/terminals/open/workspace/?isolated={record.pk}" not in page  # no valid token yet
    update = client.post(f"/inventory/isolated-namespaces/{record.pk}/update/")
    assert update.status_code == 302 and Job.objects.filter(kind="kube-isolated-namespace-create", target_id=str(record.pk)).count() == 2


def test_the_cluster_page_lists_running_pods_with_a_shell_for_operators(kube_cluster, bob):
    Cluster.objects.filter(pk=kube_cluster.pk).update(observed={"kind": "kubernetes", "pods": [
        {"namespace": "shop", "name": "web-1", "containers": ["app", "sidecar"], "default_container": "app"}]})
    page = logged_in(bob).get(f"/inventory/clusters/{kube_cluster.pk}/").content.decode()
    assert 'data-pod="shop/web-1"' in page and "app, sidecar" in page
    assert f"/terminals/open/pod/?cluster={kube_cluster.pk}&amp;namespace=shop&amp;pod=web-1" in page
