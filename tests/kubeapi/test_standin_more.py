"""More of the stand-in's behaviour, still only through the official client:
logs, the manual kubelet, LimitRanges, patch formats, HPA versions, garbage
collection, finalizers, services, volumes, watches from several threads and
plain-HTTP mode.
"""

from __future__ import annotations

import threading
import time

import pytest
from kubernetes import client, dynamic, utils, watch
from kubernetes.client.rest import ApiException

from tests.kubeapi import KubeStandin
from tests.kubeapi.test_standin import condition, deployment, status_of, wait_for


@pytest.fixture
def core(kube_client):
    return client.CoreV1Api(kube_client)


@pytest.fixture
def apps(kube_client):
    return client.AppsV1Api(kube_client)


def pod(name, image="busybox:1.36", **extra):
    spec = {"containers": [{"name": "main", "image": image}]}
    spec.update(extra)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"run": name}}, "spec": spec}


def running(core, ns, name):
    return wait_for(lambda: (lambda p: p if p.status.phase == "Running" and condition(p, "Ready").status == "True"
                             else None)(core.read_namespaced_pod(name, ns)), what=f"pod {name} running")


def test_a_new_namespace_has_a_default_service_account_and_the_root_ca(core, kube_namespace, kube_standin):
    assert core.read_namespaced_service_account("default", kube_namespace).metadata.uid
    ca = core.read_namespaced_config_map("kube-root-ca.crt", kube_namespace)
    assert ca.data["ca.crt"] == kube_standin.ca_pem
    ns = core.read_namespace(kube_namespace)
    assert ns.status.phase == "Active" and ns.metadata.labels["kubernetes.io/metadata.name"] == kube_namespace


def test_pod_logs_can_be_tailed_and_followed(core, kube_namespace, kube_standin):
    core.create_namespaced_pod(kube_namespace, pod("logger"))
    running(core, kube_namespace, "logger")
    kube_standin.append_pod_log(kube_namespace, "logger", "one\ntwo\nthree\n")
    assert core.read_namespaced_pod_log("logger", kube_namespace) == "one\ntwo\nthree\n"
    assert core.read_namespaced_pod_log("logger", kube_namespace, tail_lines=1) == "three\n"

    lines = []
    w = watch.Watch()
    for line in w.stream(core.read_namespaced_pod_log, "logger", kube_namespace, tail_lines=1,
                         _request_timeout=10):
        lines.append(line)
        if line == "three":          # the stream is open: write more, it must arrive
            kube_standin.append_pod_log(kube_namespace, "logger", "four")
        if line == "four":
            w.stop()
    assert lines == ["three", "four"]


def test_logs_of_a_container_that_has_not_started_answer_400(core, kube_namespace, kube_standin):
    kube_standin.kubelet_mode = "manual"
    core.create_namespaced_pod(kube_namespace, pod("slow"))
    with pytest.raises(ApiException) as waiting:
        core.read_namespaced_pod_log("slow", kube_namespace)
    assert waiting.value.status == 400
    assert status_of(waiting.value)["message"] == 'container "main" in pod "slow" is waiting to start: ContainerCreating'


def test_the_manual_kubelet_leaves_pods_pending_until_the_test_marks_them(core, kube_namespace, kube_standin):
    kube_standin.kubelet_mode = "manual"
    core.create_namespaced_pod(kube_namespace, pod("p"))
    scheduled = wait_for(lambda: (lambda p: p if p.spec.node_name else None)(
        core.read_namespaced_pod("p", kube_namespace)), what="scheduled")
    assert scheduled.status.phase == "Pending"
    assert scheduled.status.container_statuses[0].state.waiting.reason == "ContainerCreating"
    kube_standin.set_pod_phase(kube_namespace, "p", ready=False, phase="Running",
                               waiting_reason="CrashLoopBackOff", restart_count=3)
    crashing = core.read_namespaced_pod("p", kube_namespace)
    assert crashing.status.container_statuses[0].state.waiting.reason == "CrashLoopBackOff"
    assert crashing.status.container_statuses[0].restart_count == 3
    kube_standin.set_pod_phase(kube_namespace, "p", ready=True)
    assert condition(core.read_namespaced_pod("p", kube_namespace), "Ready").status == "True"


def test_a_crash_looping_image_is_reported_as_crash_loop_back_off(apps, core, kube_namespace, kube_standin):
    kube_standin.failing_images = ["crashy:*"]
    kube_standin.failing_reason = "CrashLoopBackOff"
    apps.create_namespaced_deployment(kube_namespace, deployment("crash", image="crashy:1", replicas=1))

    def crash_state():
        for p in core.list_namespaced_pod(kube_namespace, label_selector="app=crash").items:
            for s in p.status.container_statuses or []:
                if s.state.waiting and s.state.waiting.reason == "CrashLoopBackOff":
                    return p
        return None

    crashed = wait_for(crash_state, what="crash loop")
    assert crashed.status.phase == "Running" and crashed.status.container_statuses[0].restart_count >= 1


def test_limit_range_defaults_fill_missing_container_resources(core, kube_namespace):
    core.create_namespaced_limit_range(kube_namespace, {"metadata": {"name": "defaults"}, "spec": {"limits": [
        {"type": "Container", "default": {"cpu": "500m", "memory": "256Mi"},
         "defaultRequest": {"cpu": "100m", "memory": "128Mi"}, "max": {"cpu": "1"}}]}})
    created = core.create_namespaced_pod(kube_namespace, pod("sized"))
    resources = created.spec.containers[0].resources
    assert resources.limits == {"cpu": "500m", "memory": "256Mi"}
    assert resources.requests == {"cpu": "100m", "memory": "128Mi"}
    assert "LimitRanger plugin set" in created.metadata.annotations["kubernetes.io/limit-ranger"]
    too_big = pod("huge")
    too_big["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "2"}}
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(kube_namespace, too_big)
    assert refused.value.status == 403
    assert "maximum cpu usage per Container is 1, but limit is 2" in status_of(refused.value)["message"]


def test_patches_merge_lists_by_key_and_follow_json_patch(apps, kube_namespace):
    body = deployment("multi")
    body["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "envoy:1"})
    apps.create_namespaced_deployment(kube_namespace, body)
    strategic = apps.patch_namespaced_deployment("multi", kube_namespace, {"spec": {"template": {"spec": {
        "containers": [{"name": "sidecar", "image": "envoy:2"}]}}}})
    assert [(c.name, c.image) for c in strategic.spec.template.spec.containers] == [
        ("web", "nginx:1.27"), ("sidecar", "envoy:2")]
    merged = apps.patch_namespaced_deployment("multi", kube_namespace, {"spec": {"template": {"spec": {
        "containers": [{"name": "only", "image": "busybox:1"}]}}}},
        _content_type="application/merge-patch+json")
    assert [c.name for c in merged.spec.template.spec.containers] == ["only"]
    patched = apps.patch_namespaced_deployment("multi", kube_namespace, [
        {"op": "replace", "path": "/spec/replicas", "value": 5},
        {"op": "add", "path": "/metadata/labels/extra", "value": "x"}])
    assert patched.spec.replicas == 5 and patched.metadata.labels["extra"] == "x"
    with pytest.raises(ApiException) as failed:
        apps.patch_namespaced_deployment("multi", kube_namespace, [{"op": "test", "path": "/spec/replicas",
                                                                    "value": 1}])
    assert failed.value.status == 422


def test_the_hpa_is_served_as_v1_and_v2_views_of_one_object(apps, kube_client, kube_namespace, kube_standin):
    kube_standin.hpa_sync_period = 0.5
    apps.create_namespaced_deployment(kube_namespace, deployment("auto", replicas=1))
    v1 = client.AutoscalingV1Api(kube_client)
    v2 = client.AutoscalingV2Api(kube_client)
    v1.create_namespaced_horizontal_pod_autoscaler(kube_namespace, {"metadata": {"name": "auto"}, "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "auto"},
        "minReplicas": 2, "maxReplicas": 5, "targetCPUUtilizationPercentage": 60}})
    as_v2 = v2.read_namespaced_horizontal_pod_autoscaler("auto", kube_namespace)
    assert as_v2.spec.metrics[0].resource.target.average_utilization == 60
    assert v1.read_namespaced_horizontal_pod_autoscaler("auto", kube_namespace).spec.target_cpu_utilization_percentage == 60
    wait_for(lambda: apps.read_namespaced_deployment("auto", kube_namespace).spec.replicas == 2,
             what="HPA enforces minReplicas")
    status = wait_for(lambda: (lambda hpa: hpa if hpa.status.desired_replicas == 2 and condition(hpa, "ScalingActive")
                               else None)(v2.read_namespaced_horizontal_pod_autoscaler("auto", kube_namespace)),
                      what="hpa status")
    # Its pods request no CPU: the controller says so, as kube-controller-manager does.
    assert condition(status, "ScalingActive").status == "False"
    assert "missing request for cpu in container" in condition(status, "ScalingActive").message


def test_deleting_a_deployment_garbage_collects_its_replica_sets_and_pods(apps, core, kube_namespace):
    apps.create_namespaced_deployment(kube_namespace, deployment("gc", replicas=2))
    wait_for(lambda: len(core.list_namespaced_pod(kube_namespace, label_selector="app=gc").items) == 2, what="pods")
    result = apps.delete_namespaced_deployment("gc", kube_namespace)
    assert result["kind"] == "Status" and result["status"] == "Success"
    wait_for(lambda: not apps.list_namespaced_replica_set(kube_namespace).items
             and not core.list_namespaced_pod(kube_namespace).items, what="dependents collected")

    apps.create_namespaced_deployment(kube_namespace, deployment("orphans", replicas=1))
    wait_for(lambda: apps.list_namespaced_replica_set(kube_namespace).items, what="rs")
    apps.delete_namespaced_deployment("orphans", kube_namespace, propagation_policy="Orphan")
    (rs,) = apps.list_namespaced_replica_set(kube_namespace).items
    assert not rs.metadata.owner_references


def test_finalizers_hold_deletion_until_they_are_removed(core, kube_namespace):
    core.create_namespaced_config_map(kube_namespace, {"metadata": {"name": "held", "finalizers": ["example.com/x"]}})
    pending = core.delete_namespaced_config_map("held", kube_namespace)
    assert pending["metadata"]["deletionTimestamp"]
    assert core.read_namespaced_config_map("held", kube_namespace).metadata.deletion_timestamp
    core.patch_namespaced_config_map("held", kube_namespace, {"metadata": {"finalizers": None}},
                                     _content_type="application/merge-patch+json")
    with pytest.raises(ApiException) as gone:
        core.read_namespaced_config_map("held", kube_namespace)
    assert gone.value.status == 404


def test_a_dry_run_delete_keeps_the_object(core, kube_namespace):
    core.create_namespaced_config_map(kube_namespace, {"metadata": {"name": "kept"}})
    core.delete_namespaced_config_map("kept", kube_namespace, dry_run="All")
    assert core.read_namespaced_config_map("kept", kube_namespace).metadata.name == "kept"


def test_services_get_cluster_ips_and_node_ports_and_claims_get_bound(core, kube_namespace):
    svc = core.create_namespaced_service(kube_namespace, {"metadata": {"name": "front"}, "spec": {
        "type": "NodePort", "selector": {"app": "front"}, "ports": [{"port": 80}]}})
    assert svc.spec.cluster_ip.startswith("10.96.") and 30000 <= svc.spec.ports[0].node_port <= 32767
    assert svc.spec.ports[0].target_port == 80 and svc.spec.ports[0].protocol == "TCP"
    with pytest.raises(ApiException) as bad_name:
        core.create_namespaced_service(kube_namespace, {"metadata": {"name": "1front"}, "spec": {
            "ports": [{"port": 80}]}})
    assert bad_name.value.status == 422 and "DNS-1035" in status_of(bad_name.value)["message"]
    core.create_namespaced_persistent_volume_claim(kube_namespace, {"metadata": {"name": "data"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    claim = wait_for(lambda: (lambda c: c if c.status.phase == "Bound" else None)(
        core.read_namespaced_persistent_volume_claim("data", kube_namespace)), what="bound claim")
    assert claim.status.capacity == {"storage": "1Gi"} and claim.spec.volume_name


def test_dynamic_client_watches_and_bookmarks(kube_client, kube_namespace, kube_standin, tmp_path):
    dyn = dynamic.DynamicClient(kube_client, cache_file=str(tmp_path / "cache.json"))
    configmaps = dyn.resources.get(api_version="v1", kind="ConfigMap")
    kube_standin.bookmark_interval = 0.2
    try:
        types = []
        for event in configmaps.watch(namespace=kube_namespace, timeout=1, allow_watch_bookmarks=True):
            types.append((event["type"], event["object"].metadata.name))
            if types == [("ADDED", "kube-root-ca.crt")]:     # watching now: a create must show up
                configmaps.create(body={"metadata": {"name": "dyn"}}, namespace=kube_namespace)
    finally:
        kube_standin.bookmark_interval = 5.0
    assert ("ADDED", "kube-root-ca.crt") in types and ("ADDED", "dyn") in types
    assert any(t == "BOOKMARK" for t, _ in types)


def test_create_from_yaml_works_against_the_stand_in(kube_client, kube_namespace, tmp_path, core):
    manifest = tmp_path / "app.yaml"
    manifest.write_text("""
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {mode: lab}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: lab}
spec:
  selector: {matchLabels: {app: lab}}
  template:
    metadata: {labels: {app: lab}}
    spec: {containers: [{name: web, image: "nginx:1.27"}]}
""")
    utils.create_from_yaml(kube_client, str(manifest), namespace=kube_namespace)
    assert core.read_namespaced_config_map("settings", kube_namespace).data == {"mode": "lab"}


def test_rolling_back_to_a_previous_template_reuses_its_replica_set(apps, kube_namespace):
    apps.create_namespaced_deployment(kube_namespace, deployment("rb", replicas=1))

    def revision_is(rev):
        def check():
            d = apps.read_namespaced_deployment("rb", kube_namespace)
            cond = condition(d, "Progressing")
            done = cond and cond.reason == "NewReplicaSetAvailable" and d.status.updated_replicas == 1 \
                and d.status.replicas == 1
            return d if done and d.metadata.annotations.get("deployment.kubernetes.io/revision") == rev else None
        return wait_for(check, what=f"revision {rev}")

    revision_is("1")
    apps.patch_namespaced_deployment("rb", kube_namespace, {"spec": {"template": {"spec": {
        "containers": [{"name": "web", "image": "nginx:1.28"}]}}}})
    revision_is("2")
    apps.patch_namespaced_deployment("rb", kube_namespace, {"spec": {"template": {"spec": {
        "containers": [{"name": "web", "image": "nginx:1.27"}]}}}})
    revision_is("3")
    replica_sets = apps.list_namespaced_replica_set(kube_namespace).items
    assert len(replica_sets) == 2
    by_image = {r.spec.template.spec.containers[0].image: r for r in replica_sets}
    assert by_image["nginx:1.27"].metadata.annotations["deployment.kubernetes.io/revision"] == "3"
    assert by_image["nginx:1.27"].spec.replicas == 1 and by_image["nginx:1.28"].spec.replicas == 0


def test_the_recreate_strategy_empties_old_pods_first(apps, core, kube_namespace):
    apps.create_namespaced_deployment(kube_namespace, deployment("rc", replicas=2, strategy={"type": "Recreate"}))
    wait_for(lambda: apps.read_namespaced_deployment("rc", kube_namespace).status.available_replicas == 2,
             what="first version")
    apps.patch_namespaced_deployment("rc", kube_namespace, {"spec": {"template": {"spec": {
        "containers": [{"name": "web", "image": "nginx:1.28"}]}}}})
    # observedGeneration first: until the controller has seen the patch, the status still
    # describes the first version, which also has 2 updated and available replicas.
    d = wait_for(lambda: (lambda d: d if d.status.observed_generation == d.metadata.generation
                          and d.status.updated_replicas == 2 and d.status.available_replicas == 2
                          and d.status.replicas == 2 else None)(apps.read_namespaced_deployment("rc", kube_namespace)),
                 what="recreated")
    assert d.spec.strategy.rolling_update is None
    images = {p.spec.containers[0].image for p in core.list_namespaced_pod(kube_namespace).items}
    assert images == {"nginx:1.28"}


def test_unknown_tokens_and_missing_tokens_get_401(kube_standin):
    for token in ("not-a-token", None):
        api_client = kube_standin.api_client(token="placeholder")
        if token is None:
            api_client.configuration.api_key = {}
        else:
            api_client.configuration.api_key = {"BearerToken": f"Bearer {token}"}
        with pytest.raises(ApiException) as denied:
            client.CoreV1Api(api_client).list_namespace()
        assert denied.value.status == 401 and status_of(denied.value)["reason"] == "Unauthorized"
        api_client.close()


def test_it_serves_watches_and_writes_from_many_threads_at_once(core, kube_namespace, kube_standin):
    rv = core.list_namespaced_config_map(kube_namespace).metadata.resource_version
    counts, errors = [], []

    def watcher():
        try:
            api_client = kube_standin.api_client()
            seen = 0
            for event in watch.Watch().stream(client.CoreV1Api(api_client).list_namespaced_config_map,
                                              kube_namespace, resource_version=rv, timeout_seconds=2):
                if event["type"] == "ADDED":
                    seen += 1
            counts.append(seen)
            api_client.close()
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    def writer(start):
        api_client = kube_standin.api_client()
        for i in range(start, start + 10):
            client.CoreV1Api(api_client).create_namespaced_config_map(kube_namespace, {"metadata": {"name": f"m{i}"}})
        api_client.close()

    threads = [threading.Thread(target=watcher) for _ in range(4)] + \
        [threading.Thread(target=writer, args=(n * 10,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert not errors and counts == [30, 30, 30, 30]


def test_plain_http_mode_works_too():
    with KubeStandin(tls=False) as api:
        assert api.url.startswith("http://") and api.ca_pem is None
        api_client = api.api_client()
        assert client.CoreV1Api(api_client).read_namespace("default").metadata.name == "default"
        api_client.close()


def test_a_namespace_admin_cannot_grant_more_than_it_holds(core, kube_client, kube_namespace, kube_standin):
    rbac = client.RbacAuthorizationV1Api(kube_client)
    core.create_namespaced_service_account(kube_namespace, {"metadata": {"name": "teacher"}})
    rbac.create_namespaced_role_binding(kube_namespace, {
        "metadata": {"name": "teacher-admin"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "teacher", "namespace": kube_namespace}]})
    token = core.create_namespaced_service_account_token("teacher", kube_namespace, {"spec": {}}).status.token
    teacher_client = kube_standin.api_client(token=token)
    teacher = client.RbacAuthorizationV1Api(teacher_client)
    teacher.create_namespaced_role(kube_namespace, {"metadata": {"name": "cm-reader"}, "rules": [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]})
    with pytest.raises(ApiException) as escalation:
        teacher.create_namespaced_role(kube_namespace, {"metadata": {"name": "node-reader"}, "rules": [
            {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}]})
    assert escalation.value.status == 403
    assert "is attempting to grant RBAC permissions not currently held" in status_of(escalation.value)["message"]
    with pytest.raises(ApiException) as bind:
        teacher.create_namespaced_role_binding(kube_namespace, {
            "metadata": {"name": "sneaky"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "ServiceAccount", "name": "teacher", "namespace": kube_namespace}]})
    assert bind.value.status == 403
    with pytest.raises(ApiException) as elsewhere:
        client.CoreV1Api(teacher_client).list_namespaced_secret("kube-system")
    assert elsewhere.value.status == 403
    teacher_client.close()


def test_re_applying_the_same_configuration_changes_nothing(apps, core, kube_namespace):
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "same"}, "data": {"a": "1"}}
    first = core.patch_namespaced_config_map("same", kube_namespace, config, field_manager="filrouge",
                                             _content_type="application/apply-patch+yaml")
    again = core.patch_namespaced_config_map("same", kube_namespace, config, field_manager="filrouge",
                                             _content_type="application/apply-patch+yaml")
    assert again.metadata.resource_version == first.metadata.resource_version
    apps.patch_namespaced_deployment("same", kube_namespace, deployment("same"), field_manager="filrouge",
                                     _content_type="application/apply-patch+yaml")
    stale = deployment("same", replicas=9)
    stale["metadata"]["resourceVersion"] = "1"
    with pytest.raises(ApiException) as conflict:
        apps.patch_namespaced_deployment("same", kube_namespace, stale, field_manager="filrouge",
                                         _content_type="application/apply-patch+yaml")
    assert conflict.value.status == 409
    settled = wait_for(lambda: (lambda d: d if d.status.available_replicas == 2 else None)(
        apps.read_namespaced_deployment("same", kube_namespace)), what="available")
    managers = {(m.manager, m.operation, m.subresource) for m in settled.metadata.managed_fields}
    assert ("filrouge", "Apply", None) in managers
    assert ("kube-controller-manager", "Update", "status") in managers


def test_the_client_informer_keeps_an_observed_state_cache(apps, core, kube_namespace, kube_standin):
    from kubernetes.informer import SharedInformer

    informer = SharedInformer(core.list_namespaced_pod, namespace=kube_namespace, label_selector="app=seen")
    informer.start()
    try:
        apps.create_namespaced_deployment(kube_namespace, deployment("seen", replicas=3))
        wait_for(lambda: len(informer.cache.list()) == 3
                 and all(p.status.phase == "Running" for p in informer.cache.list()), what="cache has 3 pods")
        apps.patch_namespaced_deployment_scale("seen", kube_namespace, {"spec": {"replicas": 1}})
        wait_for(lambda: len(informer.cache.list()) == 1, what="cache shrinks to 1 pod")
    finally:
        informer.stop()


def test_status_writes_go_through_the_status_subresource_only(core, kube_namespace):
    core.create_namespaced_service(kube_namespace, {"metadata": {"name": "lb"}, "spec": {
        "type": "LoadBalancer", "ports": [{"port": 443}]}})
    patched = core.patch_namespaced_service_status("lb", kube_namespace, {
        "spec": {"type": "ClusterIP"}, "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}}})
    assert patched.status.load_balancer.ingress[0].ip == "192.0.2.10"
    assert patched.spec.type == "LoadBalancer"
    ignored = core.patch_namespaced_service("lb", kube_namespace, {"status": {"loadBalancer": {}}})
    assert ignored.status.load_balancer.ingress[0].ip == "192.0.2.10"


def test_token_requests_honour_expiration_seconds(core, kube_namespace):
    request = core.create_namespaced_service_account_token("default", kube_namespace,
                                                           {"spec": {"expirationSeconds": 7200}})
    remaining = request.status.expiration_timestamp.timestamp() - time.time()
    assert 7100 < remaining <= 7200
    with pytest.raises(ApiException) as too_short:
        core.create_namespaced_service_account_token("default", kube_namespace, {"spec": {"expirationSeconds": 60}})
    assert too_short.value.status == 422
    assert "may not specify a duration less than 10 minutes" in status_of(too_short.value)["message"]


def test_the_raw_watch_protocol_is_chunked_json_lines(kube_client, kube_standin, kube_namespace):
    response = kube_client.call_api(
        "GET", f"{kube_standin.url}/api/v1/namespaces/{kube_namespace}/serviceaccounts?watch=1&timeoutSeconds=1",
        {"Authorization": f"Bearer {kube_standin.admin_token}", "Accept": "application/json"})
    raw = response.response
    assert raw.status == 200 and raw.headers["Transfer-Encoding"] == "chunked"
    lines = [line for line in raw.read().decode().splitlines() if line]
    import json
    events = [json.loads(line) for line in lines]
    assert events[0]["type"] == "ADDED" and events[0]["object"]["kind"] == "ServiceAccount"
    assert events[0]["object"]["metadata"]["name"] == "default"


def test_a_delayed_fault_makes_the_client_time_out(core, kube_namespace, kube_standin):
    # urllib3 retries a read timeout, so every attempt must hang
    kube_standin.inject_fault(status=None, delay=1.0, count=10,
                              path_prefix=f"/api/v1/namespaces/{kube_namespace}/secrets")
    with pytest.raises(Exception) as timed_out:
        core.list_namespaced_secret(kube_namespace, _request_timeout=0.2)
    assert "timed out" in str(timed_out.value).lower()
    kube_standin.clear_faults()
    kube_standin.inject_fault(status=503, count=2)
    for _ in range(2):
        with pytest.raises(ApiException) as unavailable:
            core.list_namespaced_secret(kube_namespace)
        assert unavailable.value.status == 503
    assert core.list_namespaced_secret(kube_namespace).items == []


def test_delete_collection_and_event_field_selectors(core, kube_namespace):
    for i in range(3):
        core.create_namespaced_config_map(kube_namespace, {"metadata": {"name": f"tmp{i}", "labels": {"tmp": "yes"}}})
    core.delete_collection_namespaced_config_map(kube_namespace, label_selector="tmp=yes")
    assert [c.metadata.name for c in core.list_namespaced_config_map(kube_namespace).items] == ["kube-root-ca.crt"]
    core.create_namespaced_pod(kube_namespace, pod("evented"))
    scheduled = wait_for(lambda: core.list_namespaced_event(
        kube_namespace, field_selector="involvedObject.kind=Pod,involvedObject.name=evented,reason=Scheduled").items,
        what="Scheduled event")
    assert scheduled[0].source.component == "default-scheduler"
    assert scheduled[0].message.startswith(f"Successfully assigned {kube_namespace}/evented to ")


def test_malformed_quantities_are_rejected_before_they_reach_admission(core, kube_namespace):
    broken = pod("broken")
    broken["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "lots"}}
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(kube_namespace, broken)
    assert refused.value.status == 400 and "quantities must match" in status_of(refused.value)["message"]


def test_foreground_deletion_removes_dependents_before_the_owner(apps, core, kube_namespace):
    apps.create_namespaced_deployment(kube_namespace, deployment("fg", replicas=2))
    wait_for(lambda: len(core.list_namespaced_pod(kube_namespace, label_selector="app=fg").items) == 2, what="pods")
    pending = apps.delete_namespaced_deployment("fg", kube_namespace, propagation_policy="Foreground")
    assert pending["metadata"]["finalizers"] == ["foregroundDeletion"] and pending["metadata"]["deletionTimestamp"]

    def owner_gone():
        try:
            apps.read_namespaced_deployment("fg", kube_namespace)
        except ApiException as err:
            return err.status == 404
        return False

    wait_for(owner_gone, what="deployment removed")
    assert not core.list_namespaced_pod(kube_namespace, label_selector="app=fg").items
    assert not apps.list_namespaced_replica_set(kube_namespace).items


def test_a_rolling_update_moves_one_pod_at_a_time_with_surge_one_and_no_unavailability(apps, core, kube_namespace,
                                                                                       kube_standin):
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    apps.create_namespaced_deployment(kube_namespace, deployment("roll", replicas=3, strategy=strategy))
    wait_for(lambda: apps.read_namespaced_deployment("roll", kube_namespace).status.available_replicas == 3,
             what="first rollout")
    kube_standin.kubelet_mode = "manual"
    apps.patch_namespaced_deployment("roll", kube_namespace, {"spec": {"template": {"spec": {
        "containers": [{"name": "web", "image": "nginx:1.28"}]}}}})

    def sizes():
        by_image = {r.spec.template.spec.containers[0].image: r.spec.replicas
                    for r in apps.list_namespaced_replica_set(kube_namespace, label_selector="app=roll").items}
        return by_image.get("nginx:1.27", 0), by_image.get("nginx:1.28", 0)

    for step in range(1, 4):
        wait_for(lambda: sizes() == (4 - step, step), what=f"step {step}: old {4 - step} / new {step}")
        new_pods = [p for p in core.list_namespaced_pod(kube_namespace, label_selector="app=roll").items
                    if p.spec.containers[0].image == "nginx:1.28" and not p.metadata.deletion_timestamp
                    and not (condition(p, "Ready") and condition(p, "Ready").status == "True")]
        assert len(new_pods) == 1
        available = apps.read_namespaced_deployment("roll", kube_namespace).status.available_replicas
        assert available == 3          # maxUnavailable 0: never below 3 available
        kube_standin.set_pod_phase(kube_namespace, new_pods[0].metadata.name, ready=True)
    wait_for(lambda: sizes() == (0, 3), what="old ReplicaSet emptied")
    done = wait_for(lambda: (lambda d: d if condition(d, "Progressing").reason == "NewReplicaSetAvailable"
                             else None)(apps.read_namespaced_deployment("roll", kube_namespace)), what="complete")
    assert done.status.updated_replicas == 3 and done.status.available_replicas == 3


def test_a_client_certificate_kubeconfig_authenticates_by_its_cn_and_o(kube_standin, kube_namespace):
    import base64

    import yaml

    text = kube_standin.kubeconfig(client_cert=True)
    user = yaml.safe_load(text)["users"][0]["user"]
    assert "token" not in user and base64.b64decode(user["client-key-data"]).startswith(b"-----BEGIN PRIVATE KEY-----")
    admin = kube_standin.api_client(kubeconfig_text=text)
    try:
        names = [item.metadata.name for item in client.CoreV1Api(admin).list_namespace().items]
        assert kube_namespace in names
        review = client.AuthenticationV1Api(admin).create_self_subject_review({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
        assert review.status.user_info.username == "kubernetes-admin" and "system:masters" in review.status.user_info.groups
    finally:
        admin.close()

    # A certificate for a user without any binding: authenticated, then refused by RBAC.
    cert_pem, key_pem = kube_standin.client_certificate("nobody", groups=("developers",))
    config = yaml.safe_load(text)
    config["users"][0]["user"] = {"client-certificate-data": base64.b64encode(cert_pem.encode()).decode(),
                                  "client-key-data": base64.b64encode(key_pem.encode()).decode()}
    nobody = kube_standin.api_client(kubeconfig_text=yaml.safe_dump(config))
    try:
        with pytest.raises(ApiException) as refused:
            client.CoreV1Api(nobody).list_namespaced_pod(kube_namespace)
        import json

        assert refused.value.status == 403 and 'User "nobody" cannot list resource "pods"' in json.loads(refused.value.body)["message"]
    finally:
        nobody.close()
