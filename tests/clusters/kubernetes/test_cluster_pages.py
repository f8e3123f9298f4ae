"""Adding a Kubernetes cluster from the page and the API; its observed state on the page."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from clusters.models import Cluster, Credential
from panel.jobs.models import Job
from tests.fixtures.actors import api_client, logged_in

from tests.support.kube_jobs import run_job

pytestmark = [pytest.mark.k8s, pytest.mark.django_db(transaction=True)]

TWO_CONTEXTS = """apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster: {server: "https://prod.example:6443"}
- name: lab
  cluster: {server: "http://127.0.0.1:8001"}
users:
- name: admin
  user: {token: very-secret-token-value}
contexts:
- name: prod-admin
  context: {cluster: prod, user: admin, namespace: shop}
- name: lab-admin
  context: {cluster: lab, user: admin}
"""


def add(client, **data):
    data = {"mode": "kubeconfig", **data}
    return client.post(reverse("clusters:kube_cluster_create"), data)


def test_bob_adds_a_cluster_from_a_pasted_kubeconfig_and_a_connect_test_starts(bob):
    response = add(logged_in(bob), name="prod", kubeconfig=TWO_CONTEXTS, context="prod-admin")
    assert response.status_code == 302
    cluster = Cluster.objects.get(name="prod")
    assert (cluster.kind, cluster.context, cluster.endpoint, cluster.default_namespace) == ("kubernetes", "prod-admin", "https://prod.example:6443", "shop")
    assert cluster.credential.kind == "kubeconfig" and "very-secret-token-value" not in cluster.credential.secret_encrypted
    assert cluster.credential.get_secret()["kubeconfig"].startswith("apiVersion: v1")
    assert Job.objects.for_target(cluster).get().kind == "kube-connect-test"


def test_a_kubeconfig_can_be_uploaded(bob):
    upload = SimpleUploadedFile("config", TWO_CONTEXTS.encode(), content_type="application/octet-stream")
    response = logged_in(bob).post(reverse("clusters:kube_cluster_create"), {"mode": "kubeconfig", "name": "up", "kubeconfig_file": upload, "context": "prod-admin"})
    assert response.status_code == 302
    assert Cluster.objects.get(name="up").context == "prod-admin"


def test_bad_yaml_is_refused_with_its_line_and_nothing_is_saved_or_shown_back(bob):
    response = add(logged_in(bob), name="bad", kubeconfig="apiVersion: v1\nclusters: [\n  token: very-secret-token-value\n")
    assert response.status_code == 400
    text = response.content.decode()
    assert "not valid YAML: line 4, column 1" in text
    assert "very-secret-token-value" not in text
    assert not Cluster.objects.filter(name="bad").exists() and not Credential.objects.exists()


def test_an_unknown_context_is_refused_with_the_known_ones(bob):
    response = add(logged_in(bob), name="x", kubeconfig=TWO_CONTEXTS, context="staging")
    assert response.status_code == 400
    assert "no context &#x27;staging&#x27;; it has: prod-admin, lab-admin" in response.content.decode()


def test_several_contexts_without_a_current_one_ask_for_a_choice(bob):
    response = add(logged_in(bob), name="x", kubeconfig=TWO_CONTEXTS)
    assert response.status_code == 400
    assert "choose one of prod-admin, lab-admin" in response.content.decode()


def test_plain_http_is_refused_unless_explicitly_allowed(bob):
    client = logged_in(bob)
    refused = add(client, name="lab", kubeconfig=TWO_CONTEXTS, context="lab-admin")
    assert refused.status_code == 400 and "plain http://" in refused.content.decode()
    allowed = add(client, name="lab", kubeconfig=TWO_CONTEXTS, context="lab-admin", allow_insecure_http="on")
    assert allowed.status_code == 302


def test_a_token_cluster_needs_https_a_token_and_a_real_ca(bob, kube_target):
    client = logged_in(bob)
    base = {"mode": "token", "name": "tok"}
    assert "Give the bearer token" in client.post(reverse("clusters:kube_cluster_create"), {**base, "endpoint": "https://api.example:6443"}).content.decode()
    bad_ca = client.post(reverse("clusters:kube_cluster_create"), {**base, "endpoint": "https://api.example:6443", "token": "t", "ca_cert": "not a cert"})
    assert "not a PEM certificate" in bad_ca.content.decode()
    if kube_target.api is not None:
        api = kube_target.api
        ok = client.post(reverse("clusters:kube_cluster_create"), {**base, "endpoint": api.url, "token": api.admin_token, "ca_cert": api.ca_pem})
        assert ok.status_code == 302
        cluster = Cluster.objects.get(name="tok")
        assert cluster.credential.kind == "kube-token"
        job = run_job(Job.objects.for_target(cluster).get())
        assert job.status == "succeeded", job.error


def test_the_contexts_of_a_pasted_kubeconfig_are_listed(bob):
    response = logged_in(bob).post(reverse("clusters:kube_contexts"), {"kubeconfig": TWO_CONTEXTS})
    text = response.content.decode()
    assert "prod-admin" in text and "https://prod.example:6443" in text and "lab-admin" in text
    assert "very-secret-token-value" not in text


def test_charlie_may_not_add_clusters(charlie):
    assert add(logged_in(charlie), name="x", kubeconfig=TWO_CONTEXTS).status_code == 403
    assert logged_in(charlie).post(reverse("clusters:kube_contexts"), {"kubeconfig": TWO_CONTEXTS}).status_code == 403


def test_the_api_adds_a_cluster_and_never_returns_the_secret(bob):
    response = api_client(bob).post("/api/clusters/kubernetes/", {"name": "ci", "kubeconfig": TWO_CONTEXTS, "context": "prod-admin"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["cluster"]["kind"] == "kubernetes" and body["job"]["kind"] == "kube-connect-test"
    assert "very-secret-token-value" not in response.content.decode() and "kubeconfig" not in body["cluster"]
    detail = api_client(bob).get(f"/api/clusters/{body['cluster']['id']}/")
    assert "very-secret-token-value" not in detail.content.decode()


def test_the_api_refuses_bad_input_with_field_errors(bob, charlie):
    client = api_client(bob)
    response = client.post("/api/clusters/kubernetes/", {"name": "ci", "kubeconfig": "a: [", "context": ""}, format="json")
    assert response.status_code == 400 and "line" in response.json()["kubeconfig"][0]
    response = client.post("/api/clusters/kubernetes/", {"name": "ci", "endpoint": "http://10.0.0.1:8080", "token": "t"}, format="json")
    assert response.status_code == 400 and "plain http://" in response.json()["endpoint"][0]
    assert api_client(charlie).post("/api/clusters/kubernetes/", {"name": "z", "kubeconfig": TWO_CONTEXTS}, format="json").status_code == 403


def test_the_api_starts_the_connect_test_and_observe_jobs(bob, kube_target):
    client = api_client(bob)
    test = client.post(f"/api/clusters/{kube_target.cluster.pk}/test/")
    observe = client.post(f"/api/clusters/{kube_target.cluster.pk}/probe/")
    assert test.status_code == observe.status_code == 202
    assert (test.json()["kind"], observe.json()["kind"]) == ("kube-connect-test", "kube-observe")


def test_the_cluster_page_shows_the_observed_state_and_its_age(bob, kube_target):
    from panel.jobs.services import start_job

    assert run_job(start_job("kube-observe", {}, bob, target=kube_target.cluster)).status == "succeeded"
    client = logged_in(bob)
    page = client.get(reverse("clusters:cluster_detail", args=[kube_target.cluster.pk]))
    text = page.content.decode()
    assert page.status_code == 200
    assert 'id="kube-nodes"' in text and "v1." in text and kube_target.namespace in text
    assert 'id="kube-manifests-link"' in text and 'id="kube-namespaces-link"' in text
    assert "ago" in text and "requests" in text
    poll = client.get(reverse("clusters:cluster_detail", args=[kube_target.cluster.pk]), HTTP_HX_REQUEST="true")
    assert 'id="cluster-state"' in poll.content.decode() and "<html" not in poll.content.decode()
    # A token, or a client certificate's key as kubeadm writes it: whichever it holds stays off the page.
    kube_target.assert_no_secret_in(text)


def test_the_cluster_page_lists_autoscalers_and_says_when_there_is_no_metrics_api(bob, kube_target):
    from kubernetes import client as k8s

    from panel.jobs.services import start_job

    kube_target.require_standin("metrics_server = False")
    k8s.AutoscalingV2Api(kube_target.api_client()).create_namespaced_horizontal_pod_autoscaler(kube_target.namespace, {
        "metadata": {"name": "web"}, "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 4}})
    kube_target.api.metrics_server = False
    assert run_job(start_job("kube-observe", {}, bob, target=kube_target.cluster)).status == "succeeded"
    text = logged_in(bob).get(reverse("clusters:cluster_detail", args=[kube_target.cluster.pk])).content.decode()
    assert 'id="kube-autoscalers"' in text and "Deployment/web" in text and "1–4" in text
    assert 'id="kube-no-metrics"' in text and 'id="chart-kube-hpa"' in text

    kube_target.api.metrics_server = True
    assert run_job(start_job("kube-observe", {}, bob, target=kube_target.cluster)).status == "succeeded"
    text = logged_in(bob).get(reverse("clusters:cluster_detail", args=[kube_target.cluster.pk])).content.decode()
    assert 'id="kube-no-metrics"' not in text


def test_bob_switches_to_another_context_of_the_stored_kubeconfig(bob):
    client = logged_in(bob)
    add(client, name="prod", kubeconfig=TWO_CONTEXTS, context="prod-admin")
    cluster = Cluster.objects.get(name="prod")
    page = client.get(reverse("clusters:cluster_edit", args=[cluster.pk]))
    assert page.status_code == 200 and "lab-admin" in page.content.decode() and "very-secret-token-value" not in page.content.decode()
    refused = client.post(reverse("clusters:cluster_edit", args=[cluster.pk]), {"name": "prod", "context": "nope", "default_namespace": "shop"})
    assert refused.status_code == 400
    saved = client.post(reverse("clusters:cluster_edit", args=[cluster.pk]), {"name": "prod", "context": "lab-admin", "default_namespace": "shop"})
    assert saved.status_code == 302
    assert Cluster.objects.get(pk=cluster.pk).context == "lab-admin"


def test_the_cluster_list_shows_pods_and_nodes_of_kubernetes_clusters(bob, kube_target):
    from panel.jobs.services import start_job

    assert run_job(start_job("kube-observe", {}, bob, target=kube_target.cluster)).status == "succeeded"
    text = logged_in(bob).get(reverse("clusters:cluster_list")).content.decode()
    assert kube_target.cluster.name in text and "nodes ready" in text and "Add a Kubernetes cluster" in text


def test_the_api_changes_the_context_only_to_one_the_kubeconfig_has(bob):
    client = api_client(bob)
    cluster = client.post("/api/clusters/kubernetes/", {"name": "ci", "kubeconfig": TWO_CONTEXTS, "context": "prod-admin"}, format="json").json()["cluster"]
    assert cluster["context"] == "prod-admin" and cluster["default_namespace"] == "shop"
    refused = client.patch(f"/api/clusters/{cluster['id']}/", {"context": "nope"}, format="json")
    assert refused.status_code == 400 and "prod-admin, lab-admin" in refused.json()["context"][0]
    changed = client.patch(f"/api/clusters/{cluster['id']}/", {"context": "lab-admin"}, format="json")
    assert changed.status_code == 200 and changed.json()["context"] == "lab-admin"


NO_METRICS = "the HPA was unable to compute the replica count: failed to get cpu utilization: unable to get metrics for resource cpu"


def test_the_cluster_page_shows_sizes_in_units_and_no_desired_count_an_autoscaler_could_not_compute(bob):
    cluster = Cluster.objects.create(name="stored", kind="kubernetes", endpoint="https://k8s.example:6443", observed={
        "version": "v1.34.1",
        "nodes": [{"name": "node-1", "ready": True, "roles": ["control-plane"], "pressure": [], "kubelet_version": "v1.34.1",
                   "capacity": {"cpu": "4", "memory": "16310376Ki", "pods": "110"},
                   "allocatable": {"cpu": "3920m", "memory": "16208000Ki", "pods": "110"}}],
        "namespaces": [{"name": "shop", "phase": "Active", "pods": 2, "pods_ready": 2, "restarts": 0, "cpu_cores": 0.25, "memory_bytes": 64 * 1024 * 1024}],
        "autoscalers": [
            {"namespace": "shop", "name": "web", "target": "Deployment/web", "min": 1, "max": 4, "current": 2, "desired": 0,
             "cpu_utilization": None, "scaling_active": False, "scaling_message": NO_METRICS},
            {"namespace": "shop", "name": "api", "target": "Deployment/api", "min": 1, "max": 4, "current": 3, "desired": 3,
             "cpu_utilization": 40, "scaling_active": True, "scaling_message": ""},
        ],
    })
    text = logged_in(bob).get(reverse("clusters:cluster_detail", args=[cluster.pk])).content.decode()
    assert "15.6\u00a0GiB / 15.5\u00a0GiB" in text and "4 cores / 3.92 cores" in text and "Ki<" not in text
    assert "250 millicores" in text and "64\u00a0MiB" in text
    assert f'title="{NO_METRICS}">2 / –</span>' in text and "2 / 0" not in text
    assert "3 / 3" in text

    french = logged_in(bob).get(reverse("clusters:cluster_detail", args=[cluster.pk]), HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "15,6\u00a0Gio" in french and "3,92 cœurs" in french


def test_the_namespaces_page_shows_quotas_in_units(bob):
    from clusters.kubernetes.records import IsolatedNamespaceRecord

    cluster = Cluster.objects.create(name="stored", kind="kubernetes", endpoint="https://k8s.example:6443")
    IsolatedNamespaceRecord.objects.create(cluster=cluster, name="team-a", owner=bob,
                                           quota={"pods": "20", "requests.cpu": "500m", "requests.memory": "2Gi"})
    text = logged_in(bob).get(reverse("clusters:kube_namespaces", args=[cluster.pk])).content.decode()
    assert "team-a" in text
    assert "pods=20" in text and "requests.cpu=500 millicores" in text and "requests.memory=2\u00a0GiB" in text
