"""What the API server says reaches the person applying, in its own words: the served
replacement of a removed version, a decoding failure (HTTP 500) caused by the manifest,
and the deprecation warnings of versions still served."""

import json
import re

import pytest
from kubernetes import client as k8s

from clusters.kubernetes.manifests import ManifestInvalid, load_and_validate, raw_request

from .conftest import job_lines, manifest_set, run_kind

ENDPOINTS_WARNING = "v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice"

STORAGE_CLASS_V1BETA1 = """\
apiVersion: storage.k8s.io/v1beta1
kind: StorageClass
metadata: {name: fast}
provisioner: kubernetes.io/no-provisioner
"""

ENDPOINTS = """\
apiVersion: v1
kind: Endpoints
metadata: {name: external-db}
subsets:
- addresses: [{ip: 192.0.2.10}]
  ports: [{port: 5432}]
"""


def deployment(replicas="2", containers=None):
    containers = containers or "\n      - name: web\n        image: registry.example.test/web:1"
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:{containers}
"""


@pytest.fixture
def legacy_cluster(kube_target):
    """On the stand-in, play a cluster that still serves storage.k8s.io/v1beta1 (for
    CSIStorageCapacity only, as Kubernetes 1.24-1.26 did); a real cluster is what it is."""
    if kube_target.api is not None:
        kube_target.api.serve_legacy_versions = True
    yield kube_target
    if kube_target.api is not None:
        kube_target.api.serve_legacy_versions = False


def server_minor(kube_target):
    info = k8s.VersionApi(kube_target.api_client()).get_code()
    return int(re.match(r"\d+", info.minor).group(0))


def test_a_v1beta1_storage_class_is_told_to_use_storage_v1_even_where_v1beta1_still_serves_other_kinds(legacy_cluster, db):
    with pytest.raises(ManifestInvalid) as caught:
        load_and_validate(legacy_cluster.api_client(), [("sc.yaml", STORAGE_CLASS_V1BETA1)], legacy_cluster.namespace)
    (problem,) = caught.value.problems
    assert "Use apiVersion: storage.k8s.io/v1 instead" in problem, problem
    assert "CSIStorageCapacity" not in problem
    assert problem.startswith("sc.yaml, document 1 (line 1): ")


def test_the_stand_in_serves_storage_v1beta1_only_when_asked_and_warns_that_it_is_deprecated(legacy_cluster):
    legacy_cluster.require_standin("an older cluster's API versions")
    api_client = legacy_cluster.api_client()
    params = api_client.param_serialize(method="GET", resource_path="/apis/storage.k8s.io/v1beta1/namespaces/default/csistoragecapacities",
                                        header_params={"Accept": "application/json"}, auth_settings=["BearerToken"])
    response = api_client.call_api(*params)
    response.read()
    assert response.status == 200
    assert response.getheader("Warning") == ('299 - "storage.k8s.io/v1beta1 CSIStorageCapacity is deprecated in v1.24+, '
                                             'unavailable in v1.27+; use storage.k8s.io/v1 CSIStorageCapacity"')
    warnings = []
    raw_request(api_client, "GET", "/apis/storage.k8s.io/v1beta1/namespaces/default/csistoragecapacities", warnings=warnings)
    assert warnings == ["storage.k8s.io/v1beta1 CSIStorageCapacity is deprecated in v1.24+, unavailable in v1.27+; use storage.k8s.io/v1 CSIStorageCapacity"]
    legacy_cluster.api.serve_legacy_versions = False
    groups = k8s.ApisApi(api_client).get_api_versions().groups
    storage = next(group for group in groups if group.name == "storage.k8s.io")
    assert [version.group_version for version in storage.versions] == ["storage.k8s.io/v1"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("replicas, containers, expected", [
    ('"two"', None, ".spec.replicas: expected numeric (int or float), got string"),
    ("2", " {}", ".spec.template.spec.containers: expected list, got "),
])
def test_a_wrongly_typed_field_is_reported_with_the_apis_decoding_error_not_as_a_server_in_trouble(kube_target, bob, replicas, containers, expected):
    stored = manifest_set(kube_target.cluster, kube_target.namespace, deployment(replicas, containers), bob)
    job = run_kind(bob, "kube-manifests-apply", kube_target.cluster, manifest_set=stored.pk, rollout_timeout=30)
    assert job.status == "failed", job_lines(job)
    assert "could not decode the object" in job.error
    assert "failed to create typed patch object" in job.error and expected in job.error, job.error
    assert "in trouble; try again" not in job.error
    assert "fix it in the manifest" in job.error
    apps = k8s.AppsV1Api(kube_target.api_client())
    assert [item.metadata.name for item in apps.list_namespaced_deployment(kube_target.namespace).items] == []


def test_the_stand_in_answers_a_decoding_failure_like_a_real_api_server(kube_target):
    kube_target.require_standin("the stand-in's own answer")
    api_client = kube_target.api_client()
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": "two"}}
    with pytest.raises(k8s.ApiException) as caught:
        k8s.AppsV1Api(api_client).patch_namespaced_deployment("web", kube_target.namespace, body, field_manager="test", _content_type="application/apply-patch+yaml")
    assert caught.value.status == 500
    status = json.loads(caught.value.body)
    assert status == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "code": 500,
        "message": f"failed to create typed patch object ({kube_target.namespace}/web; apps/v1, Kind=Deployment): .spec.replicas: expected numeric (int or float), got string",
    }


@pytest.mark.django_db(transaction=True)
def test_deprecation_warnings_from_the_api_appear_in_the_diff_and_in_the_job_logs(kube_target, bob):
    if kube_target.api is None and server_minor(kube_target) < 33:
        pytest.skip("v1 Endpoints is deprecated (with a warning) from Kubernetes 1.33 on")
    stored = manifest_set(kube_target.cluster, kube_target.namespace, ENDPOINTS, bob)
    diff = run_kind(bob, "kube-manifests-diff", kube_target.cluster, manifest_set=stored.pk)
    assert diff.status == "succeeded", diff.error
    (row,) = diff.result["objects"]
    assert row["warnings"] == [ENDPOINTS_WARNING]
    assert f"Warning: {ENDPOINTS_WARNING}" in job_lines(diff)

    applied = run_kind(bob, "kube-manifests-apply", kube_target.cluster, manifest_set=stored.pk)
    assert applied.status == "succeeded", applied.error
    assert applied.result["applied"][0]["warnings"] == [ENDPOINTS_WARNING]
    assert f"Warning: {ENDPOINTS_WARNING}" in job_lines(applied)
