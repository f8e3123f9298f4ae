"""The workspace pod of an isolated namespace: made by the create job as the namespace's own
ServiceAccount, and a shell in it that acts with that account's rights only."""

import json
import shutil
import time
import uuid

import pytest
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException

from clusters.drivers.base import AuthFailed, NotFound
from clusters.drivers.kubernetes import PodNotRunning
from clusters.kubernetes import workspace
from clusters.models import IsolatedNamespaceRecord
from terminals import kinds

from tests.clusters.kubernetes.conftest import job_lines, run_kind

pytestmark = [pytest.mark.k8s, pytest.mark.django_db(transaction=True)]

# Works in the stand-in (its pods' token sits in a scratch folder it names) and in a real pod.
SA_DIR = '"${STANDIN_SERVICEACCOUNT_DIR:-/var/run/secrets/kubernetes.io/serviceaccount}"'
LIST_PODS = ("curl -sS --cacert " + SA_DIR + "/ca.crt -H \"Authorization: Bearer $(cat " + SA_DIR + "/token)\" "
             "\"https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT/api/v1/namespaces/NAMESPACE/pods\"; echo")


# The workspace pod must run where the "restricted" Pod Security Standard is enforced: the
# namespace says so, and the API server (PodSecurity admission, the stand-in's copy of it)
# refuses a pod that breaks it.
RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted"}


@pytest.fixture
def isolated(kube_target, bob, sam, settings):
    """An isolated namespace with a workspace, made by the create job (owned by sam), deleted afterwards."""
    record = IsolatedNamespaceRecord.objects.create(cluster=kube_target.cluster, name=f"ws-{uuid.uuid4().hex[:8]}", owner=sam, created_by=bob,
                                                    workspace=True, labels={"filrouge.test": "true", **RESTRICTED})
    job = run_kind(bob, "kube-isolated-namespace-create", record)
    assert job.status == "succeeded", (job.error, job_lines(job))
    record.refresh_from_db()
    yield record, job
    try:
        k8s.CoreV1Api(kube_target.api_client()).delete_namespace(record.name)
    except ApiException as err:
        assert err.status == 404


def running_workspace(kube_target, namespace):
    core = k8s.CoreV1Api(kube_target.api_client())
    return kube_target.wait_for(lambda: (lambda pod: pod if pod.status.phase == "Running" else None)(core.read_namespaced_pod(workspace.POD_NAME, namespace)),
                                timeout=180, message="the workspace pod to run")


def read_until(session, text, timeout=30):
    output = b""
    deadline = time.monotonic() + timeout
    while text.encode() not in output:
        assert time.monotonic() < deadline, f"{text!r} not seen in {output[-600:]!r}"
        chunk = session.read()
        assert chunk, f"the session ended before {text!r}: {output[-600:]!r}"
        output += chunk
    return output.decode(errors="replace")


def test_the_create_job_makes_the_workspace_pod_as_the_namespaces_service_account(kube_target, isolated, bob):
    record, job = isolated
    pod = running_workspace(kube_target, record.name)
    assert pod.spec.service_account_name == "workspace" == record.service_account
    assert pod.spec.automount_service_account_token is True
    assert pod.metadata.labels[workspace.WORKSPACE_LABEL] == "true" and pod.metadata.labels["filrouge.test"] == "true"
    assert pod.spec.security_context.run_as_non_root is True
    [container] = pod.spec.containers
    assert container.name == "workspace" and container.image == workspace.workspace_image()
    assert container.resources.limits == {"cpu": "250m", "memory": "256Mi"}
    assert "workspace pod created" in job_lines(job)
    # Its share comes on top of the quota: the owner keeps all of the default quota.
    quota = k8s.CoreV1Api(kube_target.api_client()).read_namespaced_resource_quota("workspace-quota", record.name)
    assert {key: quota.spec.hard[key] for key in ("pods", "requests.cpu", "limits.cpu", "requests.memory", "limits.memory")} == {
        "pods": "21", "requests.cpu": "2050m", "limits.cpu": "4250m", "requests.memory": "2112Mi", "limits.memory": "4352Mi"}

    again = run_kind(bob, "kube-isolated-namespace-create", record)
    assert again.status == "succeeded" and "workspace pod up to date" in job_lines(again)


def test_it_runs_under_the_restricted_pod_security_standard(kube_target, isolated):
    record, _job = isolated
    core = k8s.CoreV1Api(kube_target.api_client())
    assert core.read_namespace(record.name).metadata.labels["pod-security.kubernetes.io/enforce"] == "restricted"
    pod = running_workspace(kube_target, record.name)
    assert pod.spec.security_context.run_as_user == 65534 and pod.spec.security_context.seccomp_profile.type == "RuntimeDefault"
    # kubectl keeps its cache under $HOME: a place user 65534 may write
    assert {env.name: env.value for env in pod.spec.containers[0].env}["HOME"] == "/tmp"
    # the same namespace refuses a pod that asks for less (what the admission would say of a careless workspace)
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(record.name, {"metadata": {"name": "careless"}, "spec": {"serviceAccountName": "workspace", "containers": [
            {"name": "shell", "image": workspace.workspace_image(), "command": workspace.COMMAND}]}})
    message = json.loads(refused.value.body)["message"]
    assert refused.value.status == 403 and message.startswith('pods "careless" is forbidden: violates PodSecurity "restricted:latest": ')
    assert "allowPrivilegeEscalation != false" in message and "runAsNonRoot != true" in message


def test_no_workspace_pod_unless_asked(kube_target, bob, sam):
    record = IsolatedNamespaceRecord.objects.create(cluster=kube_target.cluster, name=f"nows-{uuid.uuid4().hex[:8]}", owner=sam, created_by=bob)
    job = run_kind(bob, "kube-isolated-namespace-create", record)
    core = k8s.CoreV1Api(kube_target.api_client())
    try:
        assert job.status == "succeeded", job_lines(job)
        assert core.list_namespaced_pod(record.name).items == []
        record.refresh_from_db()
        with pytest.raises(kinds.Refused, match="no workspace pod"):
            kinds.get("workspace").resolve(sam, {"isolated": record.pk})
    finally:
        core.delete_namespace(record.name)


def test_the_shell_lists_its_namespace_and_is_forbidden_elsewhere(kube_target, isolated):
    record, _job = isolated
    running_workspace(kube_target, record.name)
    secrets = []
    session = workspace.open_shell(record.cluster, record.name, record.get_kubeconfig(), 120, 30, secrets.append, missing_message="gone")
    try:
        session.write((LIST_PODS.replace("NAMESPACE", record.name) + "\n").encode())
        read_until(session, '"kind":"PodList"')
        session.write((LIST_PODS.replace("NAMESPACE", "default") + "\n").encode())
        output = read_until(session, '"reason":"Forbidden"')
        assert f"system:serviceaccount:{record.name}:workspace" in output
        if shutil.which("kubectl") or not kube_target.is_standin:
            # kubectl with no flag: in-cluster config in a real pod, the stand-in's $KUBECONFIG here
            session.write(b"kubectl get pods -o name | sed 's/^/seen-/'\n")
            read_until(session, "seen-pod/workspace")
            session.write(b"kubectl get pods -n default 2>&1 | grep -q Forbidden && echo refused-$((2+3))\n")
            read_until(session, "refused-5")
    finally:
        session.close()
    assert record.get_kubeconfig()["users"][0]["user"]["token"] in secrets


def test_the_shell_is_opened_with_the_namespaces_token_not_the_clusters(kube_target, isolated):
    kube_target.require_standin("expire_token")
    record, _job = isolated
    running_workspace(kube_target, record.name)
    kube_target.api.expire_token(record.get_kubeconfig()["users"][0]["user"]["token"])
    with pytest.raises(AuthFailed, match=f"credentials of the namespace {record.name} were refused"):
        workspace.open_shell(record.cluster, record.name, record.get_kubeconfig(), 80, 24, [].append, missing_message="gone")


def test_a_missing_or_stopped_workspace_is_told_and_the_create_job_brings_it_back(kube_target, isolated, bob):
    record, _job = isolated
    core = k8s.CoreV1Api(kube_target.api_client())
    running_workspace(kube_target, record.name)
    core.delete_namespaced_pod(workspace.POD_NAME, record.name, grace_period_seconds=0)
    kube_target.wait_for(lambda: not core.list_namespaced_pod(record.name).items, timeout=60, message="the pod to go")
    with pytest.raises(NotFound, match="^no workspace here$"):
        workspace.open_shell(record.cluster, record.name, record.get_kubeconfig(), 80, 24, [].append, missing_message="no workspace here")

    again = run_kind(bob, "kube-isolated-namespace-create", record)
    assert again.status == "succeeded" and "workspace pod created" in job_lines(again)
    running_workspace(kube_target, record.name)

    if kube_target.is_standin:
        kube_target.api.set_pod_phase(record.name, workspace.POD_NAME, ready=False, phase="Pending", waiting_reason="ContainerCreating")
        with pytest.raises(PodNotRunning, match=f"The workspace pod of {record.name} is Pending, not running yet"):
            workspace.open_shell(record.cluster, record.name, record.get_kubeconfig(), 80, 24, [].append, missing_message="gone")
        kube_target.api.set_pod_phase(record.name, workspace.POD_NAME, ready=False, phase="Failed")
        replaced = run_kind(bob, "kube-isolated-namespace-create", record)
        assert replaced.status == "succeeded" and "replacing the workspace pod: it has failed" in job_lines(replaced)
        assert "workspace pod replaced" in job_lines(replaced)
        running_workspace(kube_target, record.name)


def test_its_owner_and_operators_may_open_it_and_nobody_else(isolated, sam, bob, dave, charlie):
    record, _job = isolated
    kind = kinds.get("workspace")
    for user in (sam, bob):
        target = kind.resolve(user, {"isolated": record.pk})
        assert target.obj == record and target.label == f"workspace {record.name} on {record.cluster.name}"
    for user in (dave, charlie):
        with pytest.raises(kinds.Refused, match="No such isolated namespace"):
            kind.resolve(user, {"isolated": record.pk})
    with pytest.raises(kinds.Refused, match="lacks a valid isolated namespace"):
        kind.resolve(sam, {"isolated": "x"})


def test_its_owner_types_into_the_workspace_through_the_panels_websocket(kube_target, isolated, sam, dave, asgi_server):

    from websockets.exceptions import InvalidStatus

    from panel.audit.models import Action, AuditEvent
    from terminals.models import TerminalSession
    from tests.terminals.conftest import ws_connect, ws_read_until

    record, _job = isolated
    running_workspace(kube_target, record.name)
    with ws_connect(asgi_server, f"/ws/terminals/workspace/?isolated={record.pk}", user=sam) as socket:
        assert json.loads(socket.recv(timeout=30))["type"] == "session"
        socket.send(json.dumps({"type": "input", "data": "(" + LIST_PODS.replace("NAMESPACE", "default") + ") | grep -q Forbidden && echo refused-$((3+4))\n"}))
        ws_read_until(socket, "refused-7")
        socket.send(json.dumps({"type": "input", "data": "exit\n"}))
    session = TerminalSession.objects.get(user=sam)
    assert session.kind == "workspace" and session.object_id == str(record.pk)
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(asgi_server, f"/ws/terminals/workspace/?isolated={record.pk}", user=dave)
    assert refused.value.response.status_code == 403
    assert AuditEvent.objects.filter(action=Action.TERMINAL_REFUSED, user=dave, message__contains="No such isolated namespace").exists()
