"""The stand-in behaves like a Kubernetes API server for the official client.

Every test talks to the stand-in over real HTTPS with the official
``kubernetes`` client only, so the same assertions hold against a cluster.
Nothing sleeps for a fixed time: waits poll with a deadline.
"""

from __future__ import annotations

import base64
import time

import pytest
import urllib3
import yaml
from kubernetes import client, config, dynamic, watch
from kubernetes.client.rest import ApiException

APPLY = "application/apply-patch+yaml"


def wait_for(predicate, timeout=15.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def status_of(err):
    return yaml.safe_load(err.body)


def deployment(name, image="nginx:1.27", replicas=2, **spec):
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "web", "image": image}]}}}}
    body["spec"].update(spec)
    return body


def condition(obj, ctype):
    return next((c for c in obj.status.conditions or [] if c.type == ctype), None)


@pytest.fixture
def core(kube_client):
    return client.CoreV1Api(kube_client)


@pytest.fixture
def apps(kube_client):
    return client.AppsV1Api(kube_client)


# --- discovery and errors ----------------------------------------------------------------------

def test_it_serves_discovery_that_the_dynamic_client_understands(kube_client, tmp_path):
    dyn = dynamic.DynamicClient(kube_client, cache_file=str(tmp_path / "discovery.json"))
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    assert deployments.namespaced and "scale" in deployments.subresources
    assert dyn.resources.get(api_version="v1", kind="Namespace").namespaced is False
    assert dyn.resources.get(api_version="autoscaling/v2", kind="HorizontalPodAutoscaler")
    assert dyn.resources.get(api_version="autoscaling/v1", kind="HorizontalPodAutoscaler")
    assert dyn.resources.get(api_version="networking.k8s.io/v1", kind="Ingress")
    assert dyn.resources.get(api_version="authorization.k8s.io/v1", kind="SelfSubjectAccessReview")
    groups = {g.name: [v.version for v in g.versions] for g in client.ApisApi(kube_client).get_api_versions().groups}
    assert groups["autoscaling"] == ["v2", "v1"]
    assert "extensions" not in groups
    core_resources = {r.name for r in client.CoreV1Api(kube_client).get_api_resources().resources}
    assert {"pods/log", "pods/status", "serviceaccounts/token", "events"} <= core_resources
    version = client.VersionApi(kube_client).get_code()
    assert version.major == "1" and version.git_version.startswith("v1.")


def test_it_answers_not_found_conflict_and_invalid_as_status_errors(apps, core, kube_namespace):
    with pytest.raises(ApiException) as missing:
        apps.read_namespaced_deployment("nope", kube_namespace)
    assert missing.value.status == 404
    body = status_of(missing.value)
    assert (body["kind"], body["reason"]) == ("Status", "NotFound")
    assert body["message"] == 'deployments.apps "nope" not found'

    apps.create_namespaced_deployment(kube_namespace, deployment("web"))
    with pytest.raises(ApiException) as exists:
        apps.create_namespaced_deployment(kube_namespace, deployment("web"))
    assert exists.value.status == 409 and status_of(exists.value)["reason"] == "AlreadyExists"

    stale = apps.read_namespaced_deployment("web", kube_namespace)
    apps.patch_namespaced_deployment("web", kube_namespace, {"metadata": {"labels": {"touched": "yes"}}})
    stale.spec.replicas = 5
    with pytest.raises(ApiException) as conflict:
        apps.replace_namespaced_deployment("web", kube_namespace, stale)
    assert conflict.value.status == 409 and status_of(conflict.value)["reason"] == "Conflict"
    assert "the object has been modified" in status_of(conflict.value)["message"]

    with pytest.raises(ApiException) as invalid:
        core.create_namespaced_config_map(kube_namespace, {"metadata": {"name": "Not_Valid"}})
    assert invalid.value.status == 422
    body = status_of(invalid.value)
    assert body["reason"] == "Invalid"
    assert body["message"].startswith('ConfigMap "Not_Valid" is invalid: metadata.name: Invalid value: "Not_Valid"')
    assert body["details"]["causes"][0]["field"] == "metadata.name"


# --- server-side apply -------------------------------------------------------------------------

def test_it_applies_server_side_and_records_managed_fields(apps, kube_namespace):
    created = apps.patch_namespaced_deployment("api", kube_namespace, deployment("api", replicas=2),
                                               field_manager="filrouge", _content_type=APPLY)
    assert created.metadata.uid and created.metadata.generation == 1
    entry = next(m for m in created.metadata.managed_fields if m.manager == "filrouge")
    assert entry.operation == "Apply" and entry.fields_type == "FieldsV1" and entry.api_version == "apps/v1"
    fields = entry.fields_v1
    assert "f:replicas" in fields["f:spec"]
    assert fields["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"web"}']["f:image"] == {}

    updated = apps.patch_namespaced_deployment("api", kube_namespace, deployment("api", image="nginx:1.28"),
                                               field_manager="filrouge", _content_type=APPLY)
    assert updated.spec.template.spec.containers[0].image == "nginx:1.28"
    assert updated.metadata.generation == 2
    assert int(updated.metadata.resource_version) > int(created.metadata.resource_version)

    # applying again without a field it owned removes that field
    trimmed = deployment("api", image="nginx:1.28")
    del trimmed["metadata"]["labels"]
    after = apps.patch_namespaced_deployment("api", kube_namespace, trimmed, field_manager="filrouge",
                                             _content_type=APPLY)
    assert not (after.metadata.labels or {}).get("app")


def test_it_refuses_an_apply_that_conflicts_with_another_manager_unless_forced(apps, kube_namespace):
    apps.patch_namespaced_deployment("svc", kube_namespace, deployment("svc", replicas=2),
                                     field_manager="filrouge", _content_type=APPLY)
    apps.patch_namespaced_deployment_scale("svc", kube_namespace, {"spec": {"replicas": 4}},
                                           field_manager="operator")
    apps.patch_namespaced_deployment("svc", kube_namespace, {"spec": {"replicas": 6}}, field_manager="kubectl-edit",
                                     _content_type="application/merge-patch+json")
    with pytest.raises(ApiException) as refused:
        apps.patch_namespaced_deployment("svc", kube_namespace, deployment("svc", replicas=3),
                                         field_manager="filrouge", _content_type=APPLY)
    assert refused.value.status == 409
    body = status_of(refused.value)
    assert body["reason"] == "Conflict"
    assert body["message"] == ('Apply failed with 1 conflict: conflict with "kubectl-edit" using apps/v1: '
                               '.spec.replicas')
    assert body["details"]["causes"][0]["field"] == ".spec.replicas"

    forced = apps.patch_namespaced_deployment("svc", kube_namespace, deployment("svc", replicas=3),
                                              field_manager="filrouge", force=True, _content_type=APPLY)
    assert forced.spec.replicas == 3
    owners = {m.manager: m.fields_v1 for m in forced.metadata.managed_fields}
    assert "f:replicas" in owners["filrouge"]["f:spec"]
    assert "f:replicas" not in (owners.get("kubectl-edit") or {}).get("f:spec", {})


def test_it_computes_a_server_side_dry_run_without_storing_it(apps, kube_namespace):
    preview = apps.patch_namespaced_deployment("ghost", kube_namespace, deployment("ghost"), field_manager="diff",
                                               dry_run="All", _content_type=APPLY)
    assert preview.spec.strategy.type == "RollingUpdate"      # defaults are filled in
    assert preview.spec.template.spec.containers[0].image_pull_policy == "IfNotPresent"
    with pytest.raises(ApiException) as missing:
        apps.read_namespaced_deployment("ghost", kube_namespace)
    assert missing.value.status == 404


def test_it_requires_a_field_manager_for_apply(apps, kube_namespace):
    with pytest.raises(ApiException) as refused:
        apps.patch_namespaced_deployment("x", kube_namespace, deployment("x"), _content_type=APPLY)
    assert refused.value.status == 422
    assert "fieldManager: Required value: is required for apply patch" in status_of(refused.value)["message"]


# --- reads: selectors, watch ------------------------------------------------------------------

def test_it_filters_lists_with_label_and_field_selectors(core, kube_namespace):
    for name, labels in (("a", {"tier": "web", "env": "prod"}), ("b", {"tier": "db", "env": "prod"}),
                         ("c", {"tier": "web"})):
        core.create_namespaced_config_map(kube_namespace, {"metadata": {"name": name, "labels": labels}})

    def names(**kwargs):
        return sorted(cm.metadata.name for cm in core.list_namespaced_config_map(kube_namespace, **kwargs).items)

    assert names(label_selector="tier=web") == ["a", "c"]
    assert names(label_selector="tier==web,env=prod") == ["a"]
    assert names(label_selector="tier!=web") == ["b", "kube-root-ca.crt"]
    assert names(label_selector="tier in (db, cache)") == ["b"]
    assert names(label_selector="tier notin (db),tier") == ["a", "c"]
    assert names(label_selector="!env,tier") == ["c"]
    assert names(field_selector="metadata.name=b") == ["b"]
    assert names(field_selector="metadata.name!=b", label_selector="env") == ["a"]
    everywhere = core.list_config_map_for_all_namespaces(field_selector=f"metadata.namespace={kube_namespace}")
    assert len(everywhere.items) == 4
    with pytest.raises(ApiException) as bad:
        core.list_namespaced_config_map(kube_namespace, field_selector="data.x=1")
    assert bad.value.status == 400
    page = core.list_namespaced_config_map(kube_namespace, limit=2)
    rest = core.list_namespaced_config_map(kube_namespace, limit=2, _continue=page.metadata._continue)
    assert len(page.items) == 2 and len(rest.items) == 2 and page.metadata.remaining_item_count == 2


def test_it_streams_watch_events_and_ends_at_the_timeout(core, kube_namespace):
    listed = core.list_namespaced_config_map(kube_namespace)
    core.create_namespaced_config_map(kube_namespace, {"metadata": {"name": "w"}, "data": {"k": "1"}})
    core.patch_namespaced_config_map("w", kube_namespace, {"data": {"k": "2"}})
    core.delete_namespaced_config_map("w", kube_namespace)
    seen = []
    started = time.monotonic()
    for event in watch.Watch().stream(core.list_namespaced_config_map, kube_namespace,
                                      resource_version=listed.metadata.resource_version, timeout_seconds=1):
        seen.append((event["type"], event["object"].metadata.name, (event["object"].data or {}).get("k")))
    elapsed = time.monotonic() - started
    assert seen == [("ADDED", "w", "1"), ("MODIFIED", "w", "2"), ("DELETED", "w", "2")]
    assert 0.9 <= elapsed < 5


def test_a_watch_from_a_compacted_resource_version_gets_410_gone(core, kube_namespace, kube_standin):
    old = core.list_namespaced_config_map(kube_namespace).metadata.resource_version
    core.create_namespaced_config_map(kube_namespace, {"metadata": {"name": "bump"}})
    kube_standin.compact_history()
    with pytest.raises(ApiException) as gone:
        for _ in watch.Watch().stream(core.list_namespaced_config_map, kube_namespace, resource_version=old,
                                      timeout_seconds=2):
            pass
    assert gone.value.status == 410


def test_it_turns_secret_string_data_into_base64_data(core, kube_namespace):
    core.create_namespaced_secret(kube_namespace, {"metadata": {"name": "creds"},
                                                   "stringData": {"password": "s3cr3t"}})
    secret = core.read_namespaced_secret("creds", kube_namespace)
    assert secret.type == "Opaque"
    assert secret.string_data is None
    assert base64.b64decode(secret.data["password"]).decode() == "s3cr3t"


# --- workloads ---------------------------------------------------------------------------------

def test_it_rolls_a_deployment_out_to_ready_in_auto_mode(apps, core, kube_namespace):
    apps.create_namespaced_deployment(kube_namespace, deployment("shop", replicas=3))

    def rolled_out():
        d = apps.read_namespaced_deployment("shop", kube_namespace)
        progressing = condition(d, "Progressing")
        return d if (d.status.available_replicas == 3 and progressing
                     and progressing.reason == "NewReplicaSetAvailable") else None

    d = wait_for(rolled_out, what="shop rolled out")
    assert d.status.observed_generation == d.metadata.generation
    assert condition(d, "Available").status == "True"
    assert d.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    (rs,) = apps.list_namespaced_replica_set(kube_namespace, label_selector="app=shop").items
    template_hash = rs.metadata.labels["pod-template-hash"]
    assert rs.metadata.name == f"shop-{template_hash}"
    assert rs.metadata.owner_references[0].kind == "Deployment"
    pods = core.list_namespaced_pod(kube_namespace, label_selector="app=shop").items
    assert len(pods) == 3
    for pod in pods:
        assert pod.metadata.name.startswith(rs.metadata.name + "-") and len(pod.metadata.name) == len(rs.metadata.name) + 6
        assert pod.status.phase == "Running" and pod.spec.node_name
    running = core.list_namespaced_pod(kube_namespace, field_selector="status.phase=Running")
    assert len(running.items) == 3
    reasons = {e.reason for e in core.list_namespaced_event(kube_namespace).items}
    assert {"Scheduled", "Pulling", "Started", "SuccessfulCreate", "ScalingReplicaSet"} <= reasons

    # a `kubectl rollout restart` makes a second ReplicaSet and revision 2
    restarted_at = {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}
    apps.patch_namespaced_deployment("shop", kube_namespace,
                                     {"spec": {"template": {"metadata": {"annotations": restarted_at}}}})
    d = wait_for(lambda: (lambda d: d if d.metadata.annotations.get("deployment.kubernetes.io/revision") == "2"
                          and rolled_out() else None)(apps.read_namespaced_deployment("shop", kube_namespace)),
                 what="restart rolled out")
    replica_sets = apps.list_namespaced_replica_set(kube_namespace, label_selector="app=shop").items
    assert sorted(r.spec.replicas for r in replica_sets) == [0, 3]


def test_a_failing_image_leaves_the_deployment_unavailable_past_its_deadline(apps, core, kube_namespace,
                                                                            kube_standin):
    kube_standin.failing_images = ["registry.example/broken:*"]
    apps.create_namespaced_deployment(kube_namespace, deployment("bad", image="registry.example/broken:1",
                                                                 replicas=1, progressDeadlineSeconds=1))

    def waiting_reason():
        pods = core.list_namespaced_pod(kube_namespace, label_selector="app=bad").items
        statuses = [s for p in pods for s in (p.status.container_statuses or [])]
        return next((s.state.waiting.reason for s in statuses if s.state.waiting
                     and s.state.waiting.reason != "ContainerCreating"), None)

    assert wait_for(waiting_reason, what="pod waiting") == "ImagePullBackOff"

    def timed_out():
        d = apps.read_namespaced_deployment("bad", kube_namespace)
        progressing = condition(d, "Progressing")
        return d if progressing and progressing.status == "False" else None

    d = wait_for(timed_out, timeout=10, what="progress deadline")
    assert condition(d, "Progressing").reason == "ProgressDeadlineExceeded"
    assert condition(d, "Available").status == "False"
    assert (d.status.available_replicas or 0) == 0 and d.status.unavailable_replicas == 1
    failed = core.list_namespaced_event(kube_namespace, field_selector="reason=Failed").items
    assert any("ImagePullBackOff" in e.message or "pull" in e.message for e in failed)


def test_it_scales_a_deployment_through_the_scale_subresource(apps, core, kube_namespace):
    apps.create_namespaced_deployment(kube_namespace, deployment("scaled", replicas=1))
    scale = apps.read_namespaced_deployment_scale("scaled", kube_namespace)
    assert scale.spec.replicas == 1 and scale.status.selector == "app=scaled"
    apps.patch_namespaced_deployment_scale("scaled", kube_namespace, {"spec": {"replicas": 4}})
    wait_for(lambda: len(core.list_namespaced_pod(kube_namespace, label_selector="app=scaled").items) == 4,
             what="4 pods")
    scale.spec.replicas = 2
    scale.metadata.resource_version = None
    apps.replace_namespaced_deployment_scale("scaled", kube_namespace, scale)
    wait_for(lambda: apps.read_namespaced_deployment("scaled", kube_namespace).status.ready_replicas == 2
             and len(core.list_namespaced_pod(kube_namespace, label_selector="app=scaled").items) == 2,
             what="scaled down to 2")


def test_deleting_a_namespace_deletes_everything_inside_it(apps, core, kube_standin):
    core.create_namespace({"metadata": {"name": "doomed"}})
    apps.create_namespaced_deployment("doomed", deployment("gone", replicas=2))
    core.create_namespaced_config_map("doomed", {"metadata": {"name": "cfg"}})
    wait_for(lambda: len(core.list_namespaced_pod("doomed").items) == 2, what="pods")
    terminating = core.delete_namespace("doomed")
    assert terminating["status"]["phase"] == "Terminating"

    def namespace_gone():
        try:
            core.read_namespace("doomed")
        except ApiException as err:
            return err.status == 404
        return False

    wait_for(namespace_gone, what="namespace removed")
    assert not core.list_pod_for_all_namespaces(field_selector="metadata.namespace=doomed").items
    assert not apps.list_replica_set_for_all_namespaces(field_selector="metadata.namespace=doomed").items
    with pytest.raises(ApiException) as missing:
        core.create_namespaced_config_map("doomed", {"metadata": {"name": "late"}})
    assert missing.value.status == 404


# --- auth --------------------------------------------------------------------------------------

def test_a_token_request_token_is_scoped_by_its_role(core, kube_client, kube_namespace, kube_standin):
    rbac = client.RbacAuthorizationV1Api(kube_client)
    core.create_namespaced_service_account(kube_namespace, {"metadata": {"name": "student"}})
    rbac.create_namespaced_role(kube_namespace, {"metadata": {"name": "pod-reader"}, "rules": [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]})
    rbac.create_namespaced_role_binding(kube_namespace, {
        "metadata": {"name": "student-reads-pods"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "student", "namespace": kube_namespace}]})
    request = core.create_namespaced_service_account_token(
        "student", kube_namespace, {"spec": {"expirationSeconds": 3600}})
    token = request.status.token
    assert token.count(".") == 2 and request.status.expiration_timestamp

    student_client = kube_standin.api_client(token=token)
    student = client.CoreV1Api(student_client)
    assert student.list_namespaced_pod(kube_namespace).items == []
    with pytest.raises(ApiException) as denied:
        student.list_namespaced_pod("default")
    assert denied.value.status == 403
    body = status_of(denied.value)
    assert body["reason"] == "Forbidden"
    assert body["message"] == (f'pods is forbidden: User "system:serviceaccount:{kube_namespace}:student" cannot '
                               f'list resource "pods" in API group "" in the namespace "default"')
    with pytest.raises(ApiException) as no_create:
        student.create_namespaced_config_map(kube_namespace, {"metadata": {"name": "x"}})
    assert no_create.value.status == 403

    review = client.AuthorizationV1Api(student_client).create_self_subject_access_review(
        {"spec": {"resourceAttributes": {"namespace": kube_namespace, "verb": "list", "resource": "pods"}}})
    assert review.status.allowed is True
    kube_standin.expire_token(token)
    with pytest.raises(ApiException) as expired:
        student.list_namespaced_pod(kube_namespace)
    assert expired.value.status == 401
    student_client.close()


def test_exceeding_a_quota_gives_a_failed_create_event(apps, core, kube_namespace):
    core.create_namespaced_resource_quota(kube_namespace, {"metadata": {"name": "small"},
                                                           "spec": {"hard": {"pods": "2"}}})
    apps.create_namespaced_deployment(kube_namespace, deployment("big", replicas=3))

    def failed_create():
        events = core.list_namespaced_event(kube_namespace, field_selector="reason=FailedCreate").items
        return events[0] if events else None

    event = wait_for(failed_create, what="FailedCreate event")
    assert event.type == "Warning" and event.involved_object.kind == "ReplicaSet"
    assert "is forbidden: exceeded quota: small, requested: pods=1, used: pods=2, limited: pods=2" in event.message
    assert event.message.startswith('Error creating: pods "big-')
    d = wait_for(lambda: (lambda d: d if condition(d, "ReplicaFailure") else None)(
        apps.read_namespaced_deployment("big", kube_namespace)), what="ReplicaFailure")
    assert condition(d, "ReplicaFailure").reason == "FailedCreate"
    quota = wait_for(lambda: (lambda q: q if (q.status and q.status.used or {}).get("pods") == "2" else None)(
        core.read_namespaced_resource_quota("small", kube_namespace)), what="quota status")
    assert quota.status.hard == {"pods": "2"}
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(kube_namespace, {"metadata": {"name": "extra"}, "spec": {
            "containers": [{"name": "c", "image": "busybox:1.36"}]}})
    assert refused.value.status == 403
    assert status_of(refused.value)["message"] == ('pods "extra" is forbidden: exceeded quota: small, requested: '
                                                    'pods=1, used: pods=2, limited: pods=2')


# --- test levers and transport -----------------------------------------------------------------

def test_an_injected_fault_comes_back_as_an_api_exception(core, kube_namespace, kube_standin):
    kube_standin.inject_fault(status=500, count=1, path_prefix=f"/api/v1/namespaces/{kube_namespace}/configmaps")
    with pytest.raises(ApiException) as failed:
        core.list_namespaced_config_map(kube_namespace)
    assert failed.value.status == 500 and status_of(failed.value)["reason"] == "InternalError"
    assert core.list_namespaced_config_map(kube_namespace).items is not None
    kube_standin.reset_request_log()
    core.list_namespaced_config_map(kube_namespace, label_selector="a=b")
    assert kube_standin.request_log == [("GET", f"/api/v1/namespaces/{kube_namespace}/configmaps?labelSelector=a%3Db")]


def test_tls_verification_succeeds_with_the_ca_and_fails_without_it(kube_standin, tmp_path):
    path = tmp_path / "kubeconfig"
    kube_standin.kubeconfig(str(path), context="lab", namespace="default")
    ok = config.new_client_from_config(config_file=str(path), context="lab")
    assert client.CoreV1Api(ok).list_namespace().items
    ok.close()
    for kubeconfig, reason in ((kube_standin.make_wrong_ca_kubeconfig(), "unable to get local issuer certificate"),
                               (kube_standin.make_expired_ca_kubeconfig(), "certificate has expired")):
        bad = kube_standin.api_client(kubeconfig_text=kubeconfig)
        with pytest.raises((urllib3.exceptions.MaxRetryError, urllib3.exceptions.SSLError, ApiException)) as err:
            client.CoreV1Api(bad).list_namespace()
        assert "CERTIFICATE_VERIFY_FAILED" in str(err.value) and reason in str(err.value)
        bad.close()
