"""A student's terminal in their Kubernetes lab environment: the workspace pod of the
namespace, running as the namespace's ServiceAccount, exec'd with the namespace's own
kubeconfig, so the shell lists pods of its namespace and is refused any other.
Real lab jobs, the Kubernetes stand-in (or FILROUGE_TEST_KUBECONFIG's cluster), Chromium."""

import json
import shutil

import pytest
from django.urls import reverse
from kubernetes import client as k8s
from websockets.exceptions import InvalidStatus

from clusters.kubernetes import workspace
from labs.exercise_file import exercise_fields, parse_exercise
from labs.models import Environment, EnvironmentState, Exercise
from panel.audit.models import Action, AuditEvent
from terminals.models import TerminalSession
from tests.fixtures.actors import logged_in
from tests.labs.jobhelpers import job_text, run_now
from tests.terminals.conftest import type_line, wait_for_screen, wait_for_state, ws_connect

from .conftest import STARTER, make_exercise

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("lab_namespace_sweep"), pytest.mark.k8s]

# Prints a marker only when the answer is what is looked for (the typed line itself never
# contains the marker, so the screen shows it only once the command answered).
SA_DIR = '"${STANDIN_SERVICEACCOUNT_DIR:-/var/run/secrets/kubernetes.io/serviceaccount}"'
CURL = ("curl -sS --cacert " + SA_DIR + "/ca.crt -H \"Authorization: Bearer $(cat " + SA_DIR + "/token)\" "
        "\"https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT/api/v1/namespaces/NAMESPACE/pods\"")


def launch(course, exercise, student):
    environment = Environment.objects.create(exercise=exercise, owner=student)
    job = run_now("lab-launch", environment, user=student)
    assert job.status == "succeeded", job_text(job)
    assert environment.state == EnvironmentState.READY
    return environment, job


def running_workspace(kube_target, namespace):
    core = k8s.CoreV1Api(kube_target.api_client())
    return kube_target.wait_for(lambda: (lambda pod: pod if pod.status.phase == "Running" else None)(core.read_namespaced_pod(workspace.POD_NAME, namespace)),
                                timeout=180, message="the workspace pod to run")


@pytest.mark.browser
def test_a_student_works_in_the_workspace_with_the_namespaces_rights_only(kube_course, kube_target, sam, dave, asgi_server, browser_as, artifacts):
    environment, job = launch(kube_course, make_exercise(kube_course, "k8s-api-hpa"), sam)
    namespace = environment.access["namespace"]
    pod = running_workspace(kube_target, namespace)
    assert pod.spec.service_account_name == "workspace" and pod.spec.automount_service_account_token is True
    assert f"workspace pod created ({workspace.workspace_image()}, service account workspace)" in job_text(job)

    page = browser_as(sam)
    page.goto(f"{asgi_server.url}/labs/environments/{environment.pk}/")
    wait_for_state(page, "connected")
    type_line(page, "echo in-the-workspace-$((6*7))")
    wait_for_screen(page, "in-the-workspace-42")
    if shutil.which("kubectl") or not kube_target.is_standin:
        # What a student types: kubectl with the pod's in-cluster credentials.
        type_line(page, "kubectl get pods -o name")
        wait_for_screen(page, "pod/workspace")
        type_line(page, "kubectl get pods -n default -o name")
        wait_for_screen(page, "Forbidden")
    own, other = CURL.replace("NAMESPACE", namespace), CURL.replace("NAMESPACE", "default")
    type_line(page, own + " | grep -q '\"name\":\"workspace\"' && echo listed-$((2+2))")
    wait_for_screen(page, "listed-4")
    type_line(page, other + " | grep -q '\"reason\":\"Forbidden\"' && echo refused-$((1+1))")
    wait_for_screen(page, "refused-2")
    page.screenshot(path=str(artifacts / "terminal-lab-kubernetes.png"), full_page=True)
    type_line(page, "exit")
    wait_for_state(page, "ended")

    session = TerminalSession.objects.get(user=sam)
    assert session.kind == "lab" and session.object_id == str(environment.pk) and session.exit_status == 0
    assert AuditEvent.objects.filter(action=Action.TERMINAL_OPEN, user=sam, message__startswith="Terminal opened").exists()
    assert AuditEvent.objects.filter(action=Action.TERMINAL_END, message__startswith="Terminal ended").exists()

    # Another student is refused at the handshake, and it is audited as a refusal.
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(asgi_server, f"/ws/terminals/lab/?environment={environment.pk}", user=dave)
    assert refused.value.response.status_code == 403
    assert AuditEvent.objects.filter(action=Action.TERMINAL_REFUSED, user=dave).exists()


def test_a_reset_brings_the_workspace_back(kube_course, kube_target, sam, asgi_server):
    environment, _job = launch(kube_course, make_exercise(kube_course, "k8s-api-hpa"), sam)
    namespace = environment.access["namespace"]
    running_workspace(kube_target, namespace)
    core = k8s.CoreV1Api(kube_target.api_client())
    core.delete_namespaced_pod(workspace.POD_NAME, namespace, grace_period_seconds=0)
    kube_target.wait_for(lambda: not [pod for pod in core.list_namespaced_pod(namespace).items if pod.metadata.name == workspace.POD_NAME],
                         timeout=60, message="the workspace pod to go")
    with ws_connect(asgi_server, f"/ws/terminals/lab/?environment={environment.pk}", user=sam) as socket:
        messages = [json.loads(socket.recv(timeout=30))]
        while messages[-1]["type"] not in ("error", "ended"):
            messages.append(json.loads(socket.recv(timeout=30)))
    assert messages[-1]["message"] == f"There is no workspace pod in {namespace} any more: reset the environment to get a new one."

    reset = run_now("lab-reset", environment, user=sam)
    assert reset.status == "succeeded", job_text(reset)
    running_workspace(kube_target, environment.access["namespace"])


def test_an_exercise_without_a_workspace_has_no_pod_and_no_terminal(kube_course, kube_target, sam):
    text = (STARTER / "k8s-api-hpa.yaml").read_text().replace("start:\n", "start:\n  workspace: false\n", 1)
    parsed = parse_exercise(text, "k8s-api-hpa.yaml")
    exercise = Exercise.objects.create(course=kube_course, slug="k8s-no-workspace", **exercise_fields(parsed))
    environment, job = launch(kube_course, exercise, sam)
    core = k8s.CoreV1Api(kube_target.api_client())
    assert [pod.metadata.name for pod in core.list_namespaced_pod(environment.access["namespace"]).items] == []
    assert "workspace pod" not in job_text(job)
    page = logged_in(sam).get(reverse("labs:environment_detail", args=[environment.pk]))
    assert page.status_code == 200 and b"data-terminal" not in page.content
