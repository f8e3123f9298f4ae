"""The workspace pod of an isolated namespace: a shell with `kubectl` and only that namespace's rights.

The pod runs as the namespace's own ServiceAccount (`isolation.SERVICE_ACCOUNT`, bound only
to the namespace's Role) with its token automounted, so `kubectl` inside it talks to the API
with the in-cluster configuration and can do nothing outside the namespace. The image comes
from FILROUGE_KUBE_WORKSPACE_IMAGE (a pinned public image with a shell, kubectl and curl;
air-gapped clusters mirror it and point the setting at their copy). It asks for little CPU
and memory so that it fits any quota the panel gives, and runs as a non-root user.

The terminal into it (labs/terminals.py, terminals/kinds.py) execs with the namespace's
kubeconfig, never with the cluster's credential.

Only job code calls `ensure_workspace` (it talks to the cluster).
"""

from __future__ import annotations

import json
import math
import time

from django.conf import settings

from panel.lib.quantities import parse_quantity

from clusters.drivers.base import CommandTimeout, NotFound
from clusters.drivers.kubernetes import api_errors, describe

from .isolation import MANAGED_BY, SERVICE_ACCOUNT

POD_NAME = "workspace"
CONTAINER = "workspace"
WORKSPACE_LABEL = "filrouge.dev/workspace"
DEFAULT_IMAGE = "alpine/k8s:1.34.5"
# Small enough for any quota the panel hands out (isolation.DEFAULT_LIMITS allows up to 2 CPU).
RESOURCES = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "250m", "memory": "256Mi"}}
NOBODY = 65534
# Sleeps until told to stop, and stops at once on SIGTERM (a plain `sleep` as PID 1 ignores it
# and every delete would wait for the grace period).
COMMAND = ["/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"]


def quota_with_workspace(hard):
    """The ResourceQuota's hard limits with the workspace pod's share added on top (one pod,
    its requests and limits), so that the namespace's owner keeps all of what they were given.
    A quantity this cannot read is left as it is."""
    share = {"requests.cpu": ("cpu", "requests"), "cpu": ("cpu", "requests"), "limits.cpu": ("cpu", "limits"),
             "requests.memory": ("memory", "requests"), "memory": ("memory", "requests"), "limits.memory": ("memory", "limits")}
    result = dict(hard)
    for key, value in hard.items():
        if key == "pods":
            try:
                result[key] = str(int(value) + 1)
            except (TypeError, ValueError):
                pass
        elif key in share:
            resource, kind = share[key]
            total = parse_quantity(value)
            if total is None:
                continue
            total += parse_quantity(RESOURCES[kind][resource])
            if resource == "cpu":
                result[key] = f"{int(round(total * 1000))}m"
            else:
                result[key] = f"{math.ceil(total / 1024**2)}Mi"
    return result


def workspace_image():
    return getattr(settings, "KUBE_WORKSPACE_IMAGE", "") or DEFAULT_IMAGE


def workspace_pod(namespace, *, image=None, labels=None):
    """The workspace pod's manifest for `namespace`."""
    pod_labels = {**(labels or {}), **MANAGED_BY, WORKSPACE_LABEL: "true", "app.kubernetes.io/name": "workspace"}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": POD_NAME,
            "namespace": namespace,
            "labels": pod_labels,
            "annotations": {"kubectl.kubernetes.io/default-container": CONTAINER},
        },
        "spec": {
            "serviceAccountName": SERVICE_ACCOUNT,
            "automountServiceAccountToken": True,
            "terminationGracePeriodSeconds": 5,
            "restartPolicy": "Always",
            "securityContext": {
                "runAsNonRoot": True, "runAsUser": NOBODY, "runAsGroup": NOBODY,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [{
                "name": CONTAINER,
                "image": image or workspace_image(),
                "imagePullPolicy": "IfNotPresent",
                "command": COMMAND,
                "workingDir": "/tmp",
                # kubectl keeps its discovery cache under $HOME: a writable place for a non-root user.
                "env": [{"name": "HOME", "value": "/tmp"}, {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
                "resources": json.loads(json.dumps(RESOURCES)),
                # What the "restricted" Pod Security Standard asks, so that it runs where that is enforced.
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            }],
        },
    }


def _needs_replacing(live, wanted):
    meta, spec, status = live.get("metadata") or {}, live.get("spec") or {}, live.get("status") or {}
    if meta.get("deletionTimestamp"):
        return "it is being deleted"
    if status.get("phase") in ("Succeeded", "Failed"):
        return f"it has {status['phase'].lower()}"
    if spec.get("serviceAccountName") != SERVICE_ACCOUNT:
        return f"it runs as {spec.get('serviceAccountName') or 'default'}, not {SERVICE_ACCOUNT}"
    images = [container.get("image") for container in spec.get("containers") or []]
    wanted_image = wanted["spec"]["containers"][0]["image"]
    if images != [wanted_image]:
        return f"its image is {', '.join(filter(None, images))}, not {wanted_image}"
    return ""


def ensure_workspace(api_client, namespace, *, image=None, labels=None, ctx=None, wait_seconds=60):
    """Create the workspace pod, or replace it when it ended or differs; "created", "replaced" or "up to date"."""
    from clusters.kubernetes.manifests import raw_request

    wanted = workspace_pod(namespace, image=image, labels=labels)
    path = f"/api/v1/namespaces/{namespace}/pods"
    what = f"the workspace pod in {namespace} on {describe(api_client)}"
    try:
        with api_errors(what):
            live, _status = raw_request(api_client, "GET", f"{path}/{POD_NAME}")
    except NotFound:
        live = None
    outcome = "created"
    if live is not None:
        reason = _needs_replacing(live, wanted)
        if not reason:
            if ctx is not None:
                ctx.ok(f"workspace pod up to date ({wanted['spec']['containers'][0]['image']})", host=namespace, task="workspace")
            return "up to date"
        if ctx is not None:
            ctx.line(f"replacing the workspace pod: {reason}", host=namespace, task="workspace")
        _delete_and_wait(api_client, namespace, what, wait_seconds)
        outcome = "replaced"
    with api_errors(what):
        raw_request(api_client, "POST", path, body=wanted)
    if ctx is not None:
        ctx.changed(f"workspace pod {outcome} ({wanted['spec']['containers'][0]['image']}, service account {SERVICE_ACCOUNT})", host=namespace, task="workspace")
    return outcome


def _delete_and_wait(api_client, namespace, what, wait_seconds):
    from clusters.kubernetes.manifests import raw_request

    pod_path = f"/api/v1/namespaces/{namespace}/pods/{POD_NAME}"
    try:
        with api_errors(what):
            raw_request(api_client, "DELETE", pod_path, query={"gracePeriodSeconds": "0"})
    except NotFound:
        return
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        try:
            with api_errors(what):
                raw_request(api_client, "GET", pod_path)
        except NotFound:
            return
        time.sleep(0.2)
    raise CommandTimeout(f"The old workspace pod in {namespace} is still there after {wait_seconds} s; look at `kubectl -n {namespace} describe pod {POD_NAME}`.")


def open_shell(cluster, namespace, kubeconfig, cols, rows, add_secret, missing_message):
    """A terminal session in the workspace pod of `namespace`, exec'd with the namespace's own
    `kubeconfig` (never the cluster's credential): the shell can do what the namespace's
    account may, and nothing else. Called in a terminal's worker thread.

    `missing_message`: what to tell the person when there is no workspace pod (how to get one)."""
    from django.utils.translation import gettext as _

    from clusters.drivers import kubernetes as driver
    from clusters.drivers.base import AuthFailed
    from clusters.inventory.credentials import kubeconfig_secret_values

    if not kubeconfig:
        raise AuthFailed(_("The namespace %(namespace)s has no valid credentials any more: renew its token, then open the terminal again.") % {"namespace": namespace})
    for value in kubeconfig_secret_values(kubeconfig):
        add_secret(value)
    try:
        return driver.open_exec_session(cluster, namespace, POD_NAME, CONTAINER, cols, rows, kubeconfig=kubeconfig)
    except NotFound:
        raise NotFound(missing_message) from None
    except driver.PodNotRunning as exc:
        raise driver.PodNotRunning(_("The workspace pod of %(namespace)s is %(phase)s, not running yet: wait a moment, then open the terminal again.")
                                   % {"namespace": namespace, "phase": exc.phase}, exc.phase) from None
    except AuthFailed:
        raise AuthFailed(_("The credentials of the namespace %(namespace)s were refused (the token expired?): renew them, then open the terminal again.")
                         % {"namespace": namespace}) from None
