"""Isolated namespaces: the ground a student (or a CI pipeline) gets on a shared cluster.

One namespace with a ResourceQuota, a LimitRange, a NetworkPolicy that lets in traffic
from the same namespace only, a ServiceAccount `workspace` bound to a namespaced Role,
and a kubeconfig for that account whose token comes from the TokenRequest API (short
lived, renewable, never stored by the cluster). Every object is written with server-side
apply under the panel's field manager, so creating twice changes nothing and a later
call with another quota updates it in place.

Only job code calls this module (it talks to the cluster).
"""

from __future__ import annotations

import base64
import datetime
import time
from dataclasses import dataclass

from kubernetes import client as kube_client

from clusters.drivers.base import CommandTimeout, DriverError, NotFound
from clusters.drivers.kubernetes import api_errors, build_kubeconfig, describe
from clusters.kubernetes.manifests import ManifestObject, apply_object, raw_request

SERVICE_ACCOUNT = "workspace"
ROLE = "workspace"
NETWORK_POLICY = "isolate-namespace"
QUOTA = "workspace-quota"
LIMITS = "workspace-limits"
MANAGED_BY = {"app.kubernetes.io/managed-by": "filrouge", "filrouge.dev/isolated": "true"}

DEFAULT_QUOTA = {
    "requests.cpu": "2",
    "requests.memory": "2Gi",
    "limits.cpu": "4",
    "limits.memory": "4Gi",
    "pods": "20",
    "services": "10",
    "configmaps": "20",
    "secrets": "20",
    "persistentvolumeclaims": "5",
    "requests.storage": "10Gi",
}
DEFAULT_LIMITS = {
    "default": {"cpu": "500m", "memory": "256Mi"},
    "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
    "max": {"cpu": "2", "memory": "2Gi"},
}
ALL_VERBS = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]
READ_VERBS = ["get", "list", "watch"]
# What a student needs to work in the namespace, and nothing cluster-wide.
ROLE_RULES = [
    {"apiGroups": [""], "resources": ["pods", "services", "configmaps", "secrets", "persistentvolumeclaims", "serviceaccounts", "endpoints"], "verbs": ALL_VERBS},
    {"apiGroups": [""], "resources": ["pods/log", "pods/status"], "verbs": READ_VERBS},
    {"apiGroups": [""], "resources": ["pods/exec", "pods/portforward", "pods/eviction"], "verbs": ["create", "get"]},
    {"apiGroups": [""], "resources": ["events", "resourcequotas", "limitranges"], "verbs": READ_VERBS},
    # `kubectl get --raw .../services/NAME/proxy/`; load tests and the autoscaling check go this way too
    {"apiGroups": [""], "resources": ["services/proxy"], "verbs": ["get", "create"]},
    # `kubectl top pods` (served when the cluster runs metrics-server)
    {"apiGroups": ["metrics.k8s.io"], "resources": ["pods"], "verbs": READ_VERBS},
    {"apiGroups": ["apps"], "resources": ["deployments", "replicasets", "statefulsets", "daemonsets"], "verbs": ALL_VERBS},
    {"apiGroups": ["apps"], "resources": ["deployments/scale", "replicasets/scale", "statefulsets/scale"], "verbs": ["get", "update", "patch"]},
    {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": ALL_VERBS},
    {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": ALL_VERBS},
    {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": READ_VERBS},
    {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": ALL_VERBS},
    {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": ALL_VERBS},
    {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": READ_VERBS},
]


@dataclass
class IsolatedNamespace:
    name: str
    service_account: str
    kubeconfig: dict
    token_expires_at: datetime.datetime


def apiserver_peers():
    """NetworkPolicy peers for the API server's addresses (FILROUGE_KUBE_APISERVER_CIDRS): the
    service proxy (`kubectl proxy`, load tests, the autoscale check) reaches pods from the
    control plane's nodes, which an enforcing network plugin treats as outside the namespace."""
    import ipaddress

    from django.conf import settings

    peers = []
    for value in getattr(settings, "KUBE_APISERVER_CIDRS", ()):
        # The API server wants a CIDR (IsValidCIDR): a bare address is refused with a 422, so
        # write it as /32 (/128); host bits are cleared, as newer API servers ask.
        try:
            network = ipaddress.ip_network(str(value).strip(), strict=False)
        except ValueError:
            raise DriverError(f"FILROUGE_KUBE_APISERVER_CIDRS: {value!r} is neither an IP address nor a CIDR (write e.g. 10.0.0.10/32,10.0.0.11/32).") from None
        peers.append({"ipBlock": {"cidr": str(network)}})
    return peers


def namespace_objects(name, *, quota=None, limits=None, labels=None):
    """The objects of an isolated namespace, in apply order (namespace first)."""
    namespace_labels = {**MANAGED_BY, **(labels or {})}
    limit_item = {"type": "Container", **{key: value for key, value in (limits or DEFAULT_LIMITS).items() if value}}
    bodies = [
        ("namespaces", False, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": namespace_labels}}),
        ("resourcequotas", True, {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": QUOTA, "namespace": name, "labels": MANAGED_BY}, "spec": {"hard": {key: str(value) for key, value in (quota or DEFAULT_QUOTA).items()}}}),
        ("limitranges", True, {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": LIMITS, "namespace": name, "labels": MANAGED_BY}, "spec": {"limits": [limit_item]}}),
        ("networkpolicies", True, {
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": NETWORK_POLICY, "namespace": name, "labels": MANAGED_BY},
            # Every pod; ingress only from pods of this namespace (an empty podSelector in a
            # `from` entry without namespaceSelector means "this namespace").
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"from": [{"podSelector": {}}, *apiserver_peers()]}]},
        }),
        ("serviceaccounts", True, {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": SERVICE_ACCOUNT, "namespace": name, "labels": MANAGED_BY}}),
        ("roles", True, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": ROLE, "namespace": name, "labels": MANAGED_BY}, "rules": ROLE_RULES}),
        ("rolebindings", True, {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": ROLE, "namespace": name, "labels": MANAGED_BY},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ROLE},
            "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": name}],
        }),
    ]
    return [ManifestObject(source="isolation", document=index, line=1, body=body, plural=plural, namespaced=namespaced) for index, (plural, namespaced, body) in enumerate(bodies, start=1)]


def create_isolated_namespace(api_client, name, *, quota=None, limits=None, labels=None, token_seconds=3600, workspace=False, ctx=None) -> IsolatedNamespace:
    """Create (or bring up to date) the namespace and its guard rails (and its workspace pod
    when `workspace`, whose share is added to the quota); a kubeconfig for its account."""
    _check_name(name)
    _refuse_foreign_namespace(api_client, name)
    if workspace:
        from clusters.kubernetes.workspace import quota_with_workspace

        quota = quota_with_workspace(quota or DEFAULT_QUOTA)
    for obj in namespace_objects(name, quota=quota, limits=limits, labels=labels):
        _, created = apply_object(api_client, obj)
        if ctx is not None:
            ctx.changed(f"{obj.label} {'created' if created else 'up to date'}", host=name, task="isolate")
    if workspace:
        from clusters.kubernetes.workspace import ensure_workspace

        ensure_workspace(api_client, name, labels=labels, ctx=ctx)
    return renew_token(api_client, name, token_seconds=token_seconds, ctx=ctx)


def renew_token(api_client, name, *, token_seconds=3600, ctx=None) -> IsolatedNamespace:
    """A fresh TokenRequest token for the namespace's ServiceAccount, as a kubeconfig."""
    core = kube_client.CoreV1Api(api_client)
    request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": int(token_seconds)}}
    with api_errors(f"the TokenRequest API on {describe(api_client)} (namespace {name})"):
        answer = core.create_namespaced_service_account_token(SERVICE_ACCOUNT, name, request)
    token = answer.status.token
    expires_at = answer.status.expiration_timestamp
    if ctx is not None:
        ctx.add_secret(token)
        ctx.ok(f"token for {SERVICE_ACCOUNT} issued, valid until {expires_at:%Y-%m-%d %H:%M:%S %Z}", host=name, task="token")
    kubeconfig = build_kubeconfig(api_client.configuration.host, token, ca_pem_of(api_client), namespace=name, name=f"{name}", user=f"{name}-{SERVICE_ACCOUNT}")
    return IsolatedNamespace(name=name, service_account=SERVICE_ACCOUNT, kubeconfig=kubeconfig, token_expires_at=expires_at)


def delete_isolated_namespace(api_client, name, ctx=None, wait_seconds=120):
    """Delete the namespace (and so everything in it); nothing to do when it is gone."""
    try:
        with api_errors(f"namespace {name} on {describe(api_client)}"):
            raw_request(api_client, "DELETE", f"/api/v1/namespaces/{name}")
    except NotFound:
        if ctx is not None:
            ctx.ok(f"namespace {name} does not exist (already deleted)", host=name, task="delete")
        return False
    if ctx is not None:
        ctx.changed(f"namespace {name} deleting (with everything in it)", host=name, task="delete")
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        try:
            with api_errors(f"namespace {name} on {describe(api_client)}"):
                raw_request(api_client, "GET", f"/api/v1/namespaces/{name}")
        except NotFound:
            if ctx is not None:
                ctx.ok(f"namespace {name} deleted", host=name, task="delete")
            return True
        time.sleep(0.2)
    raise CommandTimeout(f"Namespace {name} is still terminating after {wait_seconds} s. A finalizer may hold it: look at `kubectl get namespace {name} -o yaml`.")


def ca_pem_of(api_client):
    """The CA the client trusts (PEM text), to hand on in a kubeconfig; None when it uses the system's."""
    configuration = api_client.configuration
    if configuration.ssl_ca_cert:
        with open(configuration.ssl_ca_cert, "rb") as handle:
            return handle.read().decode()
    ca_data = getattr(configuration, "ca_cert_data", None)
    if ca_data:
        return ca_data if isinstance(ca_data, str) else base64.b64decode(ca_data).decode()
    return None


def _check_name(name):
    import re

    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", name or ""):
        raise DriverError(f"{name!r} is not a valid namespace name: use at most 63 lower-case letters, digits and dashes, starting and ending with a letter or digit.")


def _refuse_foreign_namespace(api_client, name):
    """Never take over a namespace someone else made (kube-system, a team's namespace...)."""
    try:
        with api_errors(f"namespace {name} on {describe(api_client)}"):
            data, _ = raw_request(api_client, "GET", f"/api/v1/namespaces/{name}")
    except NotFound:
        return
    labels = ((data or {}).get("metadata") or {}).get("labels") or {}
    if labels.get("filrouge.dev/isolated") != "true":
        raise DriverError(f"Namespace {name} already exists and was not made by the panel as an isolated namespace; choose another name.")
