"""The manifests job kinds against a cluster: dry-run diff, apply with rollout, secrets kept out."""

import pytest
from kubernetes import client as k8s

from tests.clusters.kubernetes.conftest import api_poc_sources, job_lines, manifest_set, run_kind
from tests.support.kube import both_credential_shapes

# Jobs run in this process as the worker runs them (their own connection handling).
pytestmark = pytest.mark.django_db(transaction=True)


@both_credential_shapes
def test_it_applies_the_api_poc_example_and_follows_its_rollout_to_completion(kube_target, bob):
    stored = manifest_set(kube_target.cluster, kube_target.namespace, api_poc_sources(kube_target), bob)
    job = run_kind(bob, "kube-manifests-apply", kube_target.cluster, manifest_set=stored.pk, rollout_timeout=120)
    lines = job_lines(job)
    assert job.status == "succeeded", (job.error, lines)
    assert [(row["kind"], row["name"], row["action"]) for row in job.result["applied"]] == [
        ("ConfigMap", "api-config", "created"), ("Service", "api-poc", "created"),
        ("Deployment", "api-poc", "created"), ("HorizontalPodAutoscaler", "api-poc", "created"),
    ]
    assert job.result["rollouts"] == [{"namespace": kube_target.namespace, "name": "api-poc", "status": "complete"}]
    assert "following the rollout of Deployment/api-poc" in lines
    assert "ready 2/2" in lines
    deployment = k8s.AppsV1Api(kube_target.api_client()).read_namespaced_deployment("api-poc", kube_target.namespace)
    assert deployment.status.ready_replicas == 2
    assert any(entry.manager == "filrouge" and entry.operation == "Apply" for entry in deployment.metadata.managed_fields)
    kube_target.assert_no_secret_in(lines)


def test_a_dry_run_diff_shows_the_changes_and_applies_nothing(kube_target, bob):
    sources = api_poc_sources(kube_target)
    first = run_kind(bob, "kube-manifests-apply", kube_target.cluster, manifest_set=manifest_set(kube_target.cluster, kube_target.namespace, sources).pk, rollout_timeout=120)
    assert first.status == "succeeded", first.error
    changed = [(name, text.replace('BURN_SECONDS: "180"', 'BURN_SECONDS: "30"').replace("replicas: 2", "replicas: 3")) for name, text in sources]
    changed.append(("extra.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\ndata: {a: b}\n"))
    job = run_kind(bob, "kube-manifests-diff", kube_target.cluster, manifest_set=manifest_set(kube_target.cluster, kube_target.namespace, changed).pk)
    assert job.status == "succeeded", job.error
    states = {row["name"] if row["kind"] != "Deployment" else "deployment": row for row in job.result["objects"]}
    assert states["api-config"]["state"] == "changed"
    assert states["api-config"]["changed_fields"] == ["data.BURN_SECONDS"]
    assert "-  BURN_SECONDS: '180'\n+  BURN_SECONDS: '30'" in states["api-config"]["diff"]
    assert states["deployment"]["changed_fields"] == ["spec.replicas"]
    assert states["extra"]["state"] == "created" and "+++ applied/ConfigMap/" in states["extra"]["diff"]
    assert job.result["counts"] == {"created": 1, "changed": 2, "unchanged": 2}
    core = k8s.CoreV1Api(kube_target.api_client())
    assert core.read_namespaced_config_map("api-config", kube_target.namespace).data["BURN_SECONDS"] == "180"
    assert [cm.metadata.name for cm in core.list_namespaced_config_map(kube_target.namespace).items if cm.metadata.name == "extra"] == []
    assert k8s.AppsV1Api(kube_target.api_client()).read_namespaced_deployment("api-poc", kube_target.namespace).spec.replicas == 2


def test_a_second_diff_after_apply_says_unchanged(kube_target, bob):
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {mode: fast}\n"
    stored = manifest_set(kube_target.cluster, kube_target.namespace, text)
    assert run_kind(bob, "kube-manifests-apply", kube_target.cluster, manifest_set=stored.pk).status == "succeeded"
    job = run_kind(bob, "kube-manifests-diff", kube_target.cluster, manifest_set=stored.pk)
    assert [(row["state"], row["diff"]) for row in job.result["objects"]] == [("unchanged", "")]


def test_secret_values_never_reach_the_job_lines_or_result(kube_target, bob):
    secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {password: hunter2-very-secret}\n"
    stored = manifest_set(kube_target.cluster, kube_target.namespace, secret)
    diff = run_kind(bob, "kube-manifests-diff", kube_target.cluster, manifest_set=stored.pk)
    applied = run_kind(bob, "kube-manifests-apply", kube_target.cluster, manifest_set=stored.pk)
    assert diff.status == applied.status == "succeeded"
    import base64
    import json

    encoded = base64.b64encode(b"hunter2-very-secret").decode()
    for job in (diff, applied):
        text = job_lines(job) + json.dumps(job.result) + json.dumps(job.params)
        assert "hunter2" not in text and encoded not in text
    assert "password: (hidden, 19 bytes)" in diff.result["objects"][0]["diff"]
    assert "hunter2" not in stored.text_encrypted
    value = k8s.CoreV1Api(kube_target.api_client()).read_namespaced_secret("db", kube_target.namespace).data["password"]
    assert base64.b64decode(value) == b"hunter2-very-secret"


def test_a_refused_set_fails_the_job_with_every_problem_and_writes_nothing(kube_target, bob):
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fine}\n---\napiVersion: autoscaling/v2beta2\nkind: HorizontalPodAutoscaler\nmetadata: {name: web}\n"
    job = run_kind(bob, "kube-manifests-apply", kube_target.cluster, manifest_set=manifest_set(kube_target.cluster, kube_target.namespace, text).pk)
    assert job.status == "failed"
    assert "nothing was sent" in job.error and "Use apiVersion: autoscaling/v2 instead" in job.error
    names = [cm.metadata.name for cm in k8s.CoreV1Api(kube_target.api_client()).list_namespaced_config_map(kube_target.namespace).items]
    assert "fine" not in names


def test_a_failing_rollout_fails_the_apply_job_with_the_pods_reason(kube_target, bob):
    kube_target.require_standin("a failing image")
    image = kube_target.missing_image()
    text = f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: broken}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: broken}}}}
  template:
    metadata: {{labels: {{app: broken}}}}
    spec:
      containers: [{{name: app, image: "{image}"}}]
"""
    job = run_kind(bob, "kube-manifests-apply", kube_target.cluster, manifest_set=manifest_set(kube_target.cluster, kube_target.namespace, text).pk, rollout_timeout=30)
    assert job.status == "failed"
    assert "ImagePullBackOff" in job.error


def test_the_namespaces_job_lists_the_clusters_namespaces(kube_target, bob):
    job = run_kind(bob, "kube-namespaces", kube_target.cluster)
    assert job.status == "succeeded"
    assert kube_target.namespace in [row["name"] for row in job.result["namespaces"]]


def test_what_only_the_server_refuses_stops_the_whole_set_before_any_write(kube_target, bob):
    text = """apiVersion: v1
kind: ConfigMap
metadata: {name: first}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: other}}
    spec:
      containers: [{name: app, image: "IMAGE"}]
""".replace("IMAGE", kube_target.image("1"))
    job = run_kind(bob, "kube-manifests-apply", kube_target.cluster, manifest_set=manifest_set(kube_target.cluster, kube_target.namespace, text).pk)
    assert job.status == "failed"
    assert "nothing was sent" in job.error and "Deployment/web" in job.error and "422" in job.error
    names = [cm.metadata.name for cm in k8s.CoreV1Api(kube_target.api_client()).list_namespaced_config_map(kube_target.namespace).items]
    assert "first" not in names


def test_a_field_owned_by_another_manager_is_a_conflict_unless_forced(kube_target, bob):
    import json

    api_client = kube_target.api_client()
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shared", "namespace": kube_target.namespace}, "data": {"mode": "theirs"}}
    k8s.CoreV1Api(api_client).patch_namespaced_config_map("shared", kube_target.namespace, json.loads(json.dumps(body)), field_manager="someone-else", _content_type="application/apply-patch+yaml")
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shared}\ndata: {mode: ours}\n"
    refused = run_kind(bob, "kube-manifests-apply", kube_target.cluster, manifest_set=manifest_set(kube_target.cluster, kube_target.namespace, text).pk)
    assert refused.status == "failed" and "someone-else" in refused.error and "force" in refused.error
    forced = run_kind(bob, "kube-manifests-apply", kube_target.cluster, manifest_set=manifest_set(kube_target.cluster, kube_target.namespace, text).pk, force=True)
    assert forced.status == "succeeded", forced.error
    assert k8s.CoreV1Api(api_client).read_namespaced_config_map("shared", kube_target.namespace).data == {"mode": "ours"}


def test_a_set_may_create_the_namespace_it_applies_into(kube_target, bob):
    namespace = f"{kube_target.namespace}-new"
    text = f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {namespace}, labels: {{filrouge.test: 'true'}}}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: inside}}\n"
    core = k8s.CoreV1Api(kube_target.api_client())
    try:
        job = run_kind(bob, "kube-manifests-apply", kube_target.cluster, manifest_set=manifest_set(kube_target.cluster, namespace, text).pk)
        assert job.status == "succeeded", job.error
        assert [row["kind"] for row in job.result["applied"]] == ["Namespace", "ConfigMap"]
        assert core.read_namespaced_config_map("inside", namespace).metadata.namespace == namespace
    finally:
        try:
            core.delete_namespace(namespace)
        except k8s.ApiException as err:
            assert err.status == 404


@both_credential_shapes
def test_a_diff_redacts_the_kubeconfigs_secrets_but_not_its_ordinary_lines(kube_target, bob):
    from clusters.inventory.credentials import kubeconfig_secret_values

    # Text that also appears in the cluster's kubeconfig: structure, not secret.
    text = ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: echoes}\n"
            "data: {context: 'namespace: default', kind: 'kind: Config', current: 'current-context: standin'}\n")
    job = run_kind(bob, "kube-manifests-diff", kube_target.cluster, manifest_set=manifest_set(kube_target.cluster, kube_target.namespace, text).pk)
    assert job.status == "succeeded", job.error
    diff = job.result["objects"][0]["diff"]
    assert "namespace: default" in diff and "kind: Config" in diff and "[redacted]" not in diff + job_lines(job)
    assert kubeconfig_secret_values(kube_target.kubeconfig_text), "the test kubeconfig has a token or a client key"
    kube_target.assert_no_secret_in(diff + job_lines(job))


def test_a_validate_job_lists_every_problem_of_every_file(kube_target, bob):
    sources = [("a-broken.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a\n"),
               ("b-typo.yaml", "apiVersion: apps/v1\nkind: Deploymnet\nmetadata: {name: web}\n"),
               ("c-fine.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fine}\n")]
    job = run_kind(bob, "kube-manifests-validate", kube_target.cluster, manifest_set=manifest_set(kube_target.cluster, kube_target.namespace, sources).pk)
    assert job.status == "failed"
    assert "2 problems" in job.error and "a-broken.yaml, document 1" in job.error and "b-typo.yaml, document 1 (line 1): this cluster does not serve kind Deploymnet" in job.error
