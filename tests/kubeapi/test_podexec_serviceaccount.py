"""A process exec'd in a pod gets what a process in a real pod gets from its ServiceAccount:
the API's address and a token of that account, which RBAC judges like any other.

Exec goes through the official client's websocket stream, the command runs as a local
process of the stand-in (see podexec.py and the README)."""

from __future__ import annotations

import shutil

import pytest
from kubernetes import client
from kubernetes.stream import stream

from tests.kubeapi.test_standin import wait_for

ROLE_RULES = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]
CURL = ('curl -sS --cacert "$STANDIN_SERVICEACCOUNT_DIR/ca.crt" -H "Authorization: Bearer $(cat "$STANDIN_SERVICEACCOUNT_DIR/token")" '
        '"https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT/api/v1/namespaces/{namespace}/pods"')


@pytest.fixture
def core(kube_client):
    return client.CoreV1Api(kube_client)


def reader_pod(core, namespace, name="reader", automount=None, account_automount=None):
    """A running pod whose ServiceAccount `reader` may list pods in `namespace` only."""
    account = {"metadata": {"name": "reader"}}
    if account_automount is not None:
        account["automountServiceAccountToken"] = account_automount
    core.create_namespaced_service_account(namespace, account)
    rbac = client.RbacAuthorizationV1Api(core.api_client)
    rbac.create_namespaced_role(namespace, {"metadata": {"name": "reader"}, "rules": ROLE_RULES})
    rbac.create_namespaced_role_binding(namespace, {
        "metadata": {"name": "reader"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}]})
    spec = {"serviceAccountName": "reader", "containers": [{"name": "shell", "image": "alpine/k8s:1.34.5"}]}
    if automount is not None:
        spec["automountServiceAccountToken"] = automount
    core.create_namespaced_pod(namespace, {"metadata": {"name": name}, "spec": spec})
    wait_for(lambda: core.read_namespaced_pod(name, namespace).status.phase == "Running", what="the pod to run")
    return name


def run_in(core, namespace, pod, script):
    return stream(core.connect_get_namespaced_pod_exec, pod, namespace, command=["/bin/sh", "-c", script],
                  stdin=False, stdout=True, stderr=True, tty=False)


def test_the_pods_token_lists_its_namespace_and_is_forbidden_elsewhere(core, kube_namespace):
    pod = reader_pod(core, kube_namespace)
    output = run_in(core, kube_namespace, pod, 'cat "$STANDIN_SERVICEACCOUNT_DIR/namespace"; echo; ' + CURL.format(namespace=kube_namespace))
    assert output.startswith(kube_namespace + "\n")
    assert '"kind":"PodList"' in output and f'"name":"{pod}"' in output
    refused = run_in(core, kube_namespace, pod, CURL.format(namespace="default"))
    assert '"reason":"Forbidden"' in refused
    assert f'User \\"system:serviceaccount:{kube_namespace}:reader\\" cannot list resource \\"pods\\"' in refused


def test_the_kubeconfig_it_exports_is_read_by_kubectl(core, kube_namespace):
    if shutil.which("kubectl") is None:
        pytest.skip("no kubectl on this machine (the curl test covers the token)")
    pod = reader_pod(core, kube_namespace)
    output = run_in(core, kube_namespace, pod, "kubectl get pods -o name 2>&1; kubectl get pods -n default -o name 2>&1; true")
    assert f"pod/{pod}" in output
    assert "Forbidden" in output or "forbidden" in output


def test_the_token_dies_with_the_pod(core, kube_namespace, kube_standin):
    pod = reader_pod(core, kube_namespace)
    token = run_in(core, kube_namespace, pod, 'cat "$STANDIN_SERVICEACCOUNT_DIR/token"').strip()
    with kube_standin.api_client(token=token) as as_pod:
        assert [item.metadata.name for item in client.CoreV1Api(as_pod).list_namespaced_pod(kube_namespace).items] == [pod]
        core.delete_namespaced_pod(pod, kube_namespace, grace_period_seconds=0)
        wait_for(lambda: not core.list_namespaced_pod(kube_namespace).items, what="the pod to go")
        with pytest.raises(client.ApiException) as gone:
            client.CoreV1Api(as_pod).list_namespaced_pod(kube_namespace)
    assert gone.value.status == 401


@pytest.mark.parametrize("automount, account_automount", [(False, None), (None, False)])
def test_no_token_when_automount_is_off(core, kube_namespace, automount, account_automount):
    pod = reader_pod(core, kube_namespace, automount=automount, account_automount=account_automount)
    output = run_in(core, kube_namespace, pod, 'echo "host=${KUBERNETES_SERVICE_HOST:-none} dir=${STANDIN_SERVICEACCOUNT_DIR:-none}"')
    assert "host=none dir=none" in output
