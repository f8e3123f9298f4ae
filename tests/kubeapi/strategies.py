"""Per-kind behaviour on create and update: defaulting, status reset,
``metadata.generation``, Secret ``stringData``, Service IP allocation.

These are the "registry strategies" of the real API server.  Defaults match
what a real server fills in (imagePullPolicy, RollingUpdate 25%/25%,
progressDeadlineSeconds 600, ...) so that a later apply or diff sees the same
objects it would see on a cluster.
"""

from __future__ import annotations

import base64
import binascii

from .errors import bad_request
from .meta import clone, dig, ensure

POD_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
]


def _pull_policy(image):
    tail = image.rsplit("/", 1)[-1]
    if "@" in tail:
        return "IfNotPresent"
    if ":" not in tail or tail.endswith(":latest"):
        return "Always"
    return "IfNotPresent"


def default_pod_spec(spec):
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or []:
            if c.get("image"):
                c.setdefault("imagePullPolicy", _pull_policy(c["image"]))
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            c.setdefault("resources", {})
            res = c["resources"]
            if isinstance(res, dict) and res.get("limits"):
                req = res.setdefault("requests", {})
                for k, v in res["limits"].items():
                    req.setdefault(k, v)
            for port in c.get("ports") or []:
                port.setdefault("protocol", "TCP")
            for env in c.get("env") or []:
                ref = dig(env, "valueFrom", "fieldRef")
                if isinstance(ref, dict):
                    ref.setdefault("apiVersion", "v1")


def _default_template(obj):
    tmpl = ensure(obj, "spec", "template")
    ensure(tmpl, "metadata")
    default_pod_spec(ensure(tmpl, "spec"))


def _deployment(obj):
    spec = ensure(obj, "spec")
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        ru = strategy.setdefault("rollingUpdate", {})
        ru.setdefault("maxSurge", "25%")
        ru.setdefault("maxUnavailable", "25%")
    _default_template(obj)


def _replicaset(obj):
    ensure(obj, "spec").setdefault("replicas", 1)
    _default_template(obj)


def _pod(obj):
    spec = ensure(obj, "spec")
    default_pod_spec(spec)
    spec.setdefault("serviceAccountName", "default")
    spec["serviceAccount"] = spec["serviceAccountName"]
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("priority", 0)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    tolerations = spec.setdefault("tolerations", [])
    for tol in POD_TOLERATIONS:
        if not any(t.get("key") == tol["key"] for t in tolerations):
            tolerations.append(clone(tol))


def _service(obj):
    spec = ensure(obj, "spec")
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec["type"] != "ExternalName":
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
    if spec["type"] in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    for port in spec.get("ports") or []:
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))


def _secret(obj):
    obj.setdefault("type", "Opaque")
    data = obj.get("data") or {}
    for key, value in data.items():
        try:
            base64.b64decode(value or "", validate=True)
        except (binascii.Error, ValueError):
            raise bad_request('Secret in version "v1" cannot be handled as a Secret: '
                              'illegal base64 data at input byte 0')
    string_data = obj.pop("stringData", None)
    if string_data:
        data = obj.setdefault("data", {})
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()


def _namespace(obj):
    meta = ensure(obj, "metadata")
    labels = meta.setdefault("labels", {})
    labels["kubernetes.io/metadata.name"] = meta.get("name", "")
    ensure(obj, "spec").setdefault("finalizers", ["kubernetes"])


def _pvc(obj):
    spec = ensure(obj, "spec")
    spec.setdefault("volumeMode", "Filesystem")
    spec.setdefault("storageClassName", "standard")


def _hpa(obj):
    spec = ensure(obj, "spec")
    spec.setdefault("minReplicas", 1)
    if not spec.get("metrics"):
        spec["metrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]
    behavior = spec.setdefault("behavior", {})
    behavior.setdefault("scaleUp", {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
        {"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}]})
    behavior.setdefault("scaleDown", {"selectPolicy": "Max", "policies": [
        {"type": "Percent", "value": 100, "periodSeconds": 15}]})


def _network_policy(obj):
    spec = ensure(obj, "spec")
    if "policyTypes" not in spec:
        spec["policyTypes"] = ["Ingress"] + (["Egress"] if spec.get("egress") else [])
    spec.setdefault("podSelector", {})


_DEFAULTERS = {
    "Deployment": _deployment, "ReplicaSet": _replicaset, "Pod": _pod, "Service": _service,
    "Secret": _secret, "Namespace": _namespace, "PersistentVolumeClaim": _pvc,
    "HorizontalPodAutoscaler": _hpa, "NetworkPolicy": _network_policy,
}


def apply_defaults(rtype, obj):
    fn = _DEFAULTERS.get(rtype.kind)
    if fn:
        fn(obj)


def qos_class(spec):
    containers = spec.get("containers") or []
    any_set, guaranteed = False, True
    for c in containers:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        if req or lim:
            any_set = True
        for r in ("cpu", "memory"):
            if r not in lim or req.get(r, lim.get(r)) != lim.get(r):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def initial_status(rtype, obj):
    """What ``status`` is right after create (client-sent status is dropped)."""
    kind = rtype.kind
    if kind == "Pod":
        return {"phase": "Pending", "qosClass": qos_class(obj.get("spec") or {})}
    if kind == "Namespace":
        return {"phase": "Active"}
    if kind in ("Service", "Ingress"):
        return {"loadBalancer": {}}
    if kind == "PersistentVolumeClaim":
        return {"phase": "Pending"}
    if kind == "Node":
        return obj.get("status") or {}
    # Go serialises required (non-omitempty) status fields even when zero
    if kind == "ReplicaSet":
        return {"replicas": 0}
    if kind == "HorizontalPodAutoscaler":
        return {"desiredReplicas": 0}
    if kind == "PodDisruptionBudget":
        return {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0}
    return {}


def spec_of(obj):
    """The part of an object whose change bumps ``metadata.generation``."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}
