"""follow_rollout against the stand-in (or a real cluster) through the official client."""

import threading

import pytest
from kubernetes import client as k8s

from clusters.drivers.base import NotFound
from clusters.kubernetes.rollout import RolloutFailed, RolloutTimedOut, follow_rollout

from tests.support.kube_jobs import deployment_manifest


def test_it_follows_a_rollout_to_completion(kube_target, recording_ctx):
    api_client = kube_target.api_client()
    k8s.AppsV1Api(api_client).create_namespaced_deployment(kube_target.namespace, deployment_manifest("web", kube_target.image("1"), replicas=2))
    follow_rollout(api_client, kube_target.namespace, "web", recording_ctx, timeout=120)
    assert "updated 2/2, ready 2/2, available 2/2" in recording_ctx.text
    assert recording_ctx.progress_calls[-1] == (6, 6)
    deployment = k8s.AppsV1Api(api_client).read_namespaced_deployment("web", kube_target.namespace)
    assert deployment.status.available_replicas == 2


def test_it_reports_each_change_as_the_api_reports_it(kube_target, recording_ctx):
    kube_target.require_standin("kubelet_mode=manual")
    api = kube_target.api
    api.kubelet_mode = "manual"
    api_client = kube_target.api_client()
    k8s.AppsV1Api(api_client).create_namespaced_deployment(kube_target.namespace, deployment_manifest("web", kube_target.image("1"), replicas=2))
    errors = []
    thread = threading.Thread(target=lambda: _follow(api_client, kube_target.namespace, recording_ctx, errors))
    thread.start()
    core = k8s.CoreV1Api(api_client)
    pods = kube_target.wait_for(lambda: [p.metadata.name for p in core.list_namespaced_pod(kube_target.namespace).items if len(core.list_namespaced_pod(kube_target.namespace).items) == 2], message="two pods")
    api.set_pod_phase(kube_target.namespace, pods[0], ready=True)
    kube_target.wait_for(lambda: "ready 1/2" in recording_ctx.text, message="a ready 1/2 line")
    api.set_pod_phase(kube_target.namespace, pods[1], ready=True)
    thread.join(60)
    assert not errors, errors
    assert not thread.is_alive()
    assert "ready 1/2" in recording_ctx.text
    assert "available 2/2" in recording_ctx.text.splitlines()[-1]


def _follow(api_client, namespace, ctx, errors):
    try:
        follow_rollout(api_client, namespace, "web", ctx, timeout=60)
    except Exception as exc:  # noqa: BLE001 - handed to the test thread
        errors.append(exc)


def test_it_fails_with_image_pull_back_off_and_names_the_image(kube_target, recording_ctx):
    api_client = kube_target.api_client()
    image = kube_target.missing_image()
    k8s.AppsV1Api(api_client).create_namespaced_deployment(kube_target.namespace, deployment_manifest("web", image, replicas=1))
    with pytest.raises(RolloutFailed) as raised:
        follow_rollout(api_client, kube_target.namespace, "web", recording_ctx, timeout=120, stuck_after=2)
    message = str(raised.value)
    assert "ImagePullBackOff" in message or "ErrImagePull" in message
    assert image in message


def test_it_fails_with_crash_loop_back_off_and_names_the_container(kube_target, recording_ctx):
    api_client = kube_target.api_client()
    image = kube_target.image("1")
    if kube_target.api is not None:
        image = "registry.filrouge.test/crasher:1"
        kube_target.api.failing_images = [image]
        kube_target.api.failing_reason = "CrashLoopBackOff"
    k8s.AppsV1Api(api_client).create_namespaced_deployment(kube_target.namespace, deployment_manifest("web", image, replicas=1, command=["sh", "-c", "exit 3"]))
    with pytest.raises(RolloutFailed) as raised:
        follow_rollout(api_client, kube_target.namespace, "web", recording_ctx, timeout=180, stuck_after=3)
    assert "CrashLoopBackOff" in str(raised.value)
    assert "container app" in str(raised.value)


def test_it_reports_progress_deadline_exceeded(kube_target, recording_ctx):
    api_client = kube_target.api_client()
    image = kube_target.missing_image()
    k8s.AppsV1Api(api_client).create_namespaced_deployment(kube_target.namespace, deployment_manifest("web", image, replicas=1, progress_deadline=2))
    with pytest.raises(RolloutFailed) as raised:
        follow_rollout(api_client, kube_target.namespace, "web", recording_ctx, timeout=120)
    assert "ProgressDeadlineExceeded" in str(raised.value)
    assert image in str(raised.value)


def test_it_times_out_with_the_reason_so_far(kube_target, recording_ctx):
    kube_target.require_standin("kubelet_mode=manual")
    kube_target.api.kubelet_mode = "manual"
    api_client = kube_target.api_client()
    k8s.AppsV1Api(api_client).create_namespaced_deployment(kube_target.namespace, deployment_manifest("web", kube_target.image("1"), replicas=1))
    with pytest.raises(RolloutTimedOut) as raised:
        follow_rollout(api_client, kube_target.namespace, "web", recording_ctx, timeout=2)
    assert "did not finish rolling out within 2 s" in str(raised.value)


def test_it_falls_back_to_reading_when_the_watch_is_refused(kube_target, recording_ctx):
    kubeconfig = kube_target.limited_kubeconfig([
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
    ])
    if kube_target.api is not None:
        # Pods start only once the follower is watching, so the fallback is really exercised.
        kube_target.api.kubelet_mode = "manual"
        threading.Timer(1.5, setattr, (kube_target.api, "kubelet_mode", "auto")).start()
    k8s.AppsV1Api(kube_target.api_client()).create_namespaced_deployment(kube_target.namespace, deployment_manifest("web", kube_target.image("1"), replicas=1))
    from clusters.drivers.kubernetes import connect_kubeconfig

    follow_rollout(connect_kubeconfig(kubeconfig), kube_target.namespace, "web", recording_ctx, timeout=60)
    assert "cannot watch the Deployment (403); reading it every half second instead" in recording_ctx.text
    assert "available 1/1" in recording_ctx.text


def test_it_says_when_the_deployment_does_not_exist(kube_target, recording_ctx):
    with pytest.raises(NotFound) as raised:
        follow_rollout(kube_target.api_client(), kube_target.namespace, "nothing-here", recording_ctx, timeout=10)
    assert "nothing-here" in str(raised.value)


def test_it_fails_with_the_schedulers_message_for_unschedulable_pods(kube_target, recording_ctx):
    api_client = kube_target.api_client()
    core = k8s.CoreV1Api(api_client)
    manifest = deployment_manifest("web", kube_target.image("1"), replicas=1)
    if kube_target.api is None:
        # A real scheduler finds no node with a thousand cores.
        manifest["spec"]["template"]["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "1000"}}
    else:
        kube_target.api.kubelet_mode = "manual"
    k8s.AppsV1Api(api_client).create_namespaced_deployment(kube_target.namespace, manifest)
    if kube_target.api is not None:
        # Play the scheduler through the status subresource, as a real one reports it.
        pod = kube_target.wait_for(lambda: core.list_namespaced_pod(kube_target.namespace).items, message="the pod")[0]
        core.patch_namespaced_pod_status(pod.metadata.name, kube_target.namespace, {"status": {"conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod."}]}})
    with pytest.raises(RolloutFailed) as raised:
        follow_rollout(api_client, kube_target.namespace, "web", recording_ctx, timeout=120, stuck_after=2)
    assert "is Unschedulable" in str(raised.value) and "Insufficient cpu" in str(raised.value)
