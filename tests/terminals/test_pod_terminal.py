"""A shell in a pod over the API's exec websocket: the driver session on the stand-in (or
FILROUGE_TEST_KUBECONFIG's cluster), and an operator typing into it in Chromium."""

import time

import pytest
from django.urls import reverse

from clusters.drivers import kubernetes as kube_driver
from clusters.drivers.base import DriverError
from clusters.models import Credential
from terminals.models import TerminalSession

from .conftest import type_line, wait_for_screen, wait_for_state

pytestmark = [pytest.mark.k8s, pytest.mark.django_db(transaction=True)]


def running_pod(kube_target, name="shell"):
    from kubernetes import client as k8s

    core = k8s.CoreV1Api(kube_target.api_client())
    core.create_namespaced_pod(kube_target.namespace, {
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"containers": [{"name": "app", "image": kube_target.image("1")}, {"name": "sidecar", "image": kube_target.image("1")}]},
    })
    kube_target.wait_for(lambda: core.read_namespaced_pod(name, kube_target.namespace).status.phase == "Running", timeout=90, message="the pod to run")
    return name


def read_until(session, text, timeout=20):
    output = b""
    deadline = time.monotonic() + timeout
    while text.encode() not in output:
        assert time.monotonic() < deadline, f"{text!r} not seen in {output[-300:]!r}"
        chunk = session.read()
        assert chunk, f"the session ended before {text!r}: {output[-300:]!r}"
        output += chunk
    return output.decode(errors="replace")


def test_the_driver_session_types_resizes_and_reports_the_exit_status(kube_target):
    pod = running_pod(kube_target)
    session = kube_driver.open_exec_session(kube_target.cluster, kube_target.namespace, pod, "sidecar", cols=100, rows=30)
    try:
        session.write(b"echo pod-says-$((20+1))\n")
        read_until(session, "pod-says-21")
        session.resize(91, 27)
        session.write(b"stty size\n")
        read_until(session, "27 91")
        session.write(b"exit 3\n")
        while session.read():
            pass
        assert session.exit_status == 3
    finally:
        session.close()


def test_the_driver_refuses_a_missing_container_and_a_credential_without_exec(kube_target):
    pod = running_pod(kube_target)
    with pytest.raises(DriverError, match="no container 'nope'"):
        kube_driver.open_exec_session(kube_target.cluster, kube_target.namespace, pod, "nope")
    limited = kube_target.limited_kubeconfig([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}], name="no-exec")
    credential = Credential(name="no-exec", kind="kubeconfig")
    credential.set_secret({"kubeconfig": limited})
    credential.save()
    cluster = kube_target.cluster
    cluster.credential = credential
    with pytest.raises(DriverError) as caught:
        session = kube_driver.open_exec_session(cluster, kube_target.namespace, pod, "app")
        session.close()
    assert "forbidden" in str(caught.value).lower() or "not allowed" in str(caught.value).lower() or "403" in str(caught.value)


@pytest.mark.browser
def test_an_operator_types_into_a_pod_shell(browser_as, asgi_server, bob, kube_target, artifacts):
    pod = running_pod(kube_target)
    page = browser_as(bob)
    page.goto(f"{asgi_server.url}/terminals/open/pod/?cluster={kube_target.cluster.pk}&namespace={kube_target.namespace}&pod={pod}&container=app")
    wait_for_state(page, "connected")
    type_line(page, "echo from-the-pod-$((2*21))")
    wait_for_screen(page, "from-the-pod-42")
    page.screenshot(path=str(artifacts / "terminal-pod.png"), full_page=True)
    type_line(page, "exit")
    wait_for_state(page, "ended")
    session = TerminalSession.objects.get()
    assert session.kind == "pod" and session.exit_status == 0 and f"pod {kube_target.namespace}/{pod} (app)" in session.target_label


def observe(kube_target, bob):
    from panel.jobs.services import start_job
    from tests.support.kube_jobs import run_job

    job = run_job(start_job("kube-observe", {}, bob, target=kube_target.cluster))
    assert job.status == "succeeded", job.error


def annotated_pod(kube_target, name="picker"):
    """A running pod of two containers whose default container (annotation) is the second."""
    from kubernetes import client as k8s

    core = k8s.CoreV1Api(kube_target.api_client())
    core.create_namespaced_pod(kube_target.namespace, {
        "metadata": {"name": name, "annotations": {"kubectl.kubernetes.io/default-container": "sidecar"}},
        "spec": {"containers": [{"name": "app", "image": kube_target.image("1")}, {"name": "sidecar", "image": kube_target.image("1")}]},
    })
    kube_target.wait_for(lambda: core.read_namespaced_pod(name, kube_target.namespace).status.phase == "Running", timeout=90, message="the pod to run")
    return name


@pytest.mark.browser
def test_the_container_picker_offers_the_pods_containers_and_opens_the_chosen_one(browser_as, asgi_server, bob, kube_target, artifacts):
    pod = annotated_pod(kube_target)
    observe(kube_target, bob)
    page = browser_as(bob)
    page.goto(asgi_server.url + reverse("clusters:cluster_detail", args=[kube_target.cluster.pk]))
    page.click(f"#kube-pods tr[data-pod='{kube_target.namespace}/{pod}'] a.terminal-link")
    wait_for_state(page, "connected")
    picker = page.locator("select#picker-container")
    assert picker.locator("option").all_inner_texts() == ["app", "sidecar"]
    assert picker.input_value() == "sidecar"  # the pod's default container
    assert f"({'sidecar'})" in page.locator(".terminal-label").inner_text()

    picker.select_option("app")
    page.click("#container-picker button[type=submit]")
    page.wait_for_url("**container=app**")
    wait_for_state(page, "connected")
    type_line(page, "echo in-app-$((3*3))")
    wait_for_screen(page, "in-app-9")
    page.screenshot(path=str(artifacts / "terminal-pod-picker.png"), full_page=True)
    labels = sorted(TerminalSession.objects.values_list("target_label", flat=True))
    assert [label.split(" on ")[0] for label in labels] == [f"pod {kube_target.namespace}/{pod} (app)", f"pod {kube_target.namespace}/{pod} (sidecar)"]
    if kube_target.is_standin:
        execs = [path for method, path in kube_target.api.request_log if f"/pods/{pod}/exec" in path]
        assert any("container=sidecar" in path for path in execs) and any("container=app" in path for path in execs)


def test_a_container_that_is_not_the_pods_is_refused_at_the_handshake(asgi_server, bob, kube_target):
    from websockets.exceptions import InvalidStatus

    from panel.audit.models import Action, AuditEvent

    from .conftest import ws_connect

    pod = annotated_pod(kube_target)
    observe(kube_target, bob)
    path = f"/ws/terminals/pod/?cluster={kube_target.cluster.pk}&namespace={kube_target.namespace}&pod={pod}&container=nope"
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(asgi_server, path, user=bob)
    assert refused.value.response.status_code == 403
    assert TerminalSession.objects.count() == 0
    event = AuditEvent.objects.get(action=Action.TERMINAL_REFUSED, user=bob)
    assert f"The pod {kube_target.namespace}/{pod} has no container nope; it has: app, sidecar." in event.message


def test_a_pod_not_observed_yet_gets_a_free_container_field(bob, kube_target):
    from tests.fixtures.actors import logged_in

    page = logged_in(bob).get(f"/terminals/open/pod/?cluster={kube_target.cluster.pk}&namespace={kube_target.namespace}&pod=not-seen")
    assert page.status_code == 200
    text = page.content.decode()
    assert '<input id="picker-container" name="container"' in text and "not in the cluster's last observation yet" in text
