"""Checks on a Kubernetes lab namespace: one GET per check, with the panel's own client.

The panel reads with its admin ApiClient (target.kube), always inside the environment's
namespace (target.namespace): a student cannot hide an object from the checks nor make a
check look at another namespace. Objects are read as plain JSON, so a condition names a
field as the API spells it (`status.readyReplicas`, `spec.template.spec.containers.0.image`).
"""

import json
import operator
import re
import time

from django.utils.translation import gettext as _

from clusters.drivers.base import DriverError, NotFound
from clusters.drivers.kubernetes import api_errors, describe
from clusters.kubernetes.manifests import raw_request

from .base import Outcome, check

# kind -> (apiVersion, plural) for the kinds exercises look at; others give `api_version`
# and are found by the usual lower-case plural (`kind` + "s").
KINDS = {
    "Deployment": ("apps/v1", "deployments"),
    "StatefulSet": ("apps/v1", "statefulsets"),
    "DaemonSet": ("apps/v1", "daemonsets"),
    "ReplicaSet": ("apps/v1", "replicasets"),
    "Service": ("v1", "services"),
    "Pod": ("v1", "pods"),
    "ConfigMap": ("v1", "configmaps"),
    "Secret": ("v1", "secrets"),
    "ServiceAccount": ("v1", "serviceaccounts"),
    "PersistentVolumeClaim": ("v1", "persistentvolumeclaims"),
    "HorizontalPodAutoscaler": ("autoscaling/v2", "horizontalpodautoscalers"),
    "Ingress": ("networking.k8s.io/v1", "ingresses"),
    "NetworkPolicy": ("networking.k8s.io/v1", "networkpolicies"),
    "PodDisruptionBudget": ("policy/v1", "poddisruptionbudgets"),
    "Job": ("batch/v1", "jobs"),
    "CronJob": ("batch/v1", "cronjobs"),
    "Role": ("rbac.authorization.k8s.io/v1", "roles"),
    "RoleBinding": ("rbac.authorization.k8s.io/v1", "rolebindings"),
}

OPS = {
    ">=": operator.ge, ">": operator.gt, "==": operator.eq, "<=": operator.le, "<": operator.lt, "!=": operator.ne,
    "contains": lambda actual, wanted: str(wanted) in (actual if isinstance(actual, (list, dict)) else str(actual)),
}

MISSING = object()


def object_path(kind, name, namespace, api_version=None):
    default_version, plural = KINDS.get(kind, (None, kind.lower() + "s"))
    version = api_version or default_version
    if not version:
        raise DriverError(_("Kind %(kind)r is not one the checks know: give its api_version in the exercise file.") % {"kind": kind})
    prefix = "/api/v1" if version == "v1" else f"/apis/{version}"
    return f"{prefix}/namespaces/{namespace}/{plural}/{name}"


def get_object(target, kind, name, api_version=None):
    """The object as a dict, or None when it does not exist. Exactly one GET."""
    if target.kube is None or not target.namespace:
        raise DriverError(_("This check needs a Kubernetes lab namespace; the exercise's target is not kubernetes."))
    api_client = target.kube
    path = object_path(kind, name, target.namespace, api_version)
    try:
        with api_errors(f"the Kubernetes API at {describe(api_client)}"):
            data, _status = raw_request(api_client, "GET", path)
    except NotFound:
        return None
    return data


FIELD_PART = re.compile(r'\[(\d+)\]|\["([^"]+)"\]|\[\'([^\']+)\'\]|([^.\[\]]+)')


def field_parts(dotted):
    """`spec.ports.0.port`, `spec.ports[0].port`, `metadata.annotations["deployment.kubernetes.io/revision"]`."""
    return [next(group for group in match.groups() if group is not None) for match in FIELD_PART.finditer(dotted)]


def field_value(document, dotted):
    """The value at a dotted field path; MISSING when absent."""
    value = document
    for part in field_parts(dotted):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return MISSING
    return value


def _comparable(actual, wanted):
    """Numbers compare as numbers ("2" and 2 are equal), the rest as text."""
    try:
        if not isinstance(actual, bool) and not isinstance(wanted, bool):
            return float(actual), float(wanted)
    except (TypeError, ValueError):
        pass
    return str(actual), str(wanted)


def condition_holds(document, condition):
    """(holds, what was seen) for {field, op, value}."""
    field, op, wanted = condition.get("field", ""), condition.get("op", "=="), condition.get("value")
    if op not in OPS:
        raise DriverError(_("Unknown operator %(op)r in a kubernetes.object condition; use one of %(ops)s.") % {"op": op, "ops": ", ".join(OPS)})
    actual = field_value(document, field)
    if actual is MISSING:
        return False, _("%(field)s is not set (needs %(op)s %(value)s)") % {"field": field, "op": op, "value": wanted}
    if op == "contains":
        holds = OPS[op](actual, wanted)
    else:
        left, right = _comparable(actual, wanted)
        try:
            holds = OPS[op](left, right)
        except TypeError:
            holds = False
    shown = json.dumps(actual) if isinstance(actual, (dict, list)) else actual
    if holds:
        return True, _("%(field)s is %(actual)s") % {"field": field, "actual": shown}
    return False, _("%(field)s is %(actual)s, needs %(op)s %(value)s") % {"field": field, "actual": shown, "op": op, "value": wanted}


def _absent(kind, name, target):
    return Outcome(False, _("No %(kind)s named %(name)s in namespace %(namespace)s.") % {"kind": kind, "name": name, "namespace": target.namespace})


@check("kubernetes.object", schema={"kind": (str, True), "api_version": (str, False), "name": (str, True), "conditions": (list, False)})
def kubernetes_object(params, target):
    kind, name = params["kind"], params["name"]
    document = get_object(target, kind, name, params.get("api_version"))
    if document is None:
        return _absent(kind, name, target)
    seen = []
    for condition in params.get("conditions") or []:
        holds, text = condition_holds(document, condition)
        if not holds:
            return Outcome(False, _("%(kind)s %(name)s: %(seen)s.") % {"kind": kind, "name": name, "seen": text})
        seen.append(text)
    if seen:
        return Outcome(True, _("%(kind)s %(name)s exists: %(seen)s.") % {"kind": kind, "name": name, "seen": "; ".join(seen)})
    return Outcome(True, _("%(kind)s %(name)s exists.") % {"kind": kind, "name": name})


def _in_range(value, bounds):
    low, high = bounds
    return value is not None and low <= value <= high


@check("kubernetes.hpa", schema={"name": (str, True), "target": (str, False), "min_replicas": (list, False), "max_replicas": (list, False),
                                 "cpu_target": (list, False)})
def kubernetes_hpa(params, target):
    """An autoscaling/v2 HPA whose bounds and CPU utilisation target are within the given [low, high] ranges."""
    name = params["name"]
    hpa = get_object(target, "HorizontalPodAutoscaler", name)
    if hpa is None:
        return _absent("HorizontalPodAutoscaler", name, target)
    spec = hpa.get("spec") or {}
    problems, seen = [], []
    if params.get("target"):
        scaled = (spec.get("scaleTargetRef") or {}).get("name")
        if scaled == params["target"]:
            seen.append(_("scales %(name)s") % {"name": scaled})
        else:
            problems.append(_("scales %(name)s, not %(wanted)s") % {"name": scaled, "wanted": params["target"]})
    minimum, maximum = spec.get("minReplicas", 1), spec.get("maxReplicas")
    for label, value, key in (("minReplicas", minimum, "min_replicas"), ("maxReplicas", maximum, "max_replicas")):
        if params.get(key):
            if _in_range(value, params[key]):
                seen.append(_("%(field)s is %(value)s") % {"field": label, "value": value})
            else:
                problems.append(_("%(field)s is %(value)s, needs %(low)s to %(high)s") % {"field": label, "value": value, "low": params[key][0], "high": params[key][1]})
    if params.get("cpu_target"):
        cpu = None
        for metric in spec.get("metrics") or []:
            resource = metric.get("resource") or {}
            if metric.get("type") == "Resource" and resource.get("name") == "cpu":
                cpu = (resource.get("target") or {}).get("averageUtilization")
        low, high = params["cpu_target"]
        if cpu is None:
            problems.append(_("no CPU utilisation target"))
        elif _in_range(cpu, params["cpu_target"]):
            seen.append(_("CPU target %(value)s %%") % {"value": cpu})
        else:
            problems.append(_("CPU target is %(value)s %%, needs %(low)s to %(high)s %%") % {"value": cpu, "low": low, "high": high})
    if problems:
        return Outcome(False, _("HPA %(name)s: %(seen)s.") % {"name": name, "seen": "; ".join(problems)})
    return Outcome(True, _("HPA %(name)s: %(seen)s.") % {"name": name, "seen": "; ".join(seen) or _("exists")})


@check("kubernetes.service_port", schema={"name": (str, True), "port": (int, True), "target_port": ((int, str), False), "node_port": (bool, False)})
def kubernetes_service_port(params, target):
    """A Service maps `port` (to `target_port` when given); `node_port`: true needs a node port, false forbids one."""
    name, port = params["name"], int(params["port"])
    service = get_object(target, "Service", name)
    if service is None:
        return _absent("Service", name, target)
    spec = service.get("spec") or {}
    ports = spec.get("ports") or []
    entry = next((item for item in ports if item.get("port") == port), None)
    if entry is None:
        known = ", ".join(str(item.get("port")) for item in ports) or _("none")
        return Outcome(False, _("Service %(name)s has no port %(port)s (it has %(known)s).") % {"name": name, "port": port, "known": known})
    seen = [_("port %(port)s") % {"port": port}]
    if params.get("target_port") is not None:
        wanted, actual = params["target_port"], entry.get("targetPort", port)
        if str(actual) != str(wanted):
            return Outcome(False, _("Service %(name)s sends port %(port)s to %(actual)s, needs %(wanted)s.") % {"name": name, "port": port, "actual": actual, "wanted": wanted})
        seen.append(_("to %(port)s") % {"port": actual})
    if params.get("node_port") is not None:
        has_node_port = spec.get("type") in ("NodePort", "LoadBalancer") and bool(entry.get("nodePort"))
        if has_node_port != bool(params["node_port"]):
            kind = spec.get("type", "ClusterIP")
            if params["node_port"]:
                return Outcome(False, _("Service %(name)s is %(type)s, needs a node port.") % {"name": name, "type": kind})
            return Outcome(False, _("Service %(name)s is %(type)s, must not open a node port.") % {"name": name, "type": kind})
        if has_node_port:
            seen.append(_("node port %(port)s") % {"port": entry["nodePort"]})
    return Outcome(True, _("Service %(name)s: %(seen)s.") % {"name": name, "seen": " ".join(seen)})



# ---- autoscaling under load --------------------------------------------------------------

AUTOSCALE_WATCH_EVERY = 3  # seconds between reads of the Deployment and the HPA during the load


def _replicas(target, hpa_name, deployment_name):
    """(deployment spec.replicas, ready replicas, HPA current, HPA desired, HPA ScalingActive condition or None)."""
    deployment = get_object(target, "Deployment", deployment_name) if deployment_name else None
    hpa = get_object(target, "HorizontalPodAutoscaler", hpa_name)
    spec_replicas = ((deployment or {}).get("spec") or {}).get("replicas")
    ready = ((deployment or {}).get("status") or {}).get("readyReplicas") or 0
    status = (hpa or {}).get("status") or {}
    active = next((c for c in status.get("conditions") or [] if c.get("type") == "ScalingActive"), None)
    return spec_replicas, ready, status.get("currentReplicas"), status.get("desiredReplicas"), active


@check("kubernetes.autoscale", schema={
    "service": (str, True), "port": ((int, str), False), "path": (str, False), "hpa": (str, False),
    "concurrency": (int, False), "duration": (int, False), "rate": (int, False),
    "max_p95_ms": (int, False), "min_replicas_reached": (int, False),
})
def kubernetes_autoscale(params, target):
    """Put the student's Service under HTTP load through the API server's service proxy, with the
    namespace's own kubeconfig (what the student could do with `kubectl proxy`), watch the HPA's
    Deployment during the load, and pass when its replicas rose above where they started (to
    `min_replicas_reached` when given) while the p95 latency stayed under `max_p95_ms`.

    Bounded by the panel's load-test settings: at most FILROUGE_LOADTEST_MAX_SECONDS seconds
    and FILROUGE_LOADTEST_MAX_CONCURRENCY clients, whatever the exercise asks."""
    from django.conf import settings

    from clusters.drivers.kubernetes import service_proxy_target
    from deployments.loadtest.engine import run_load

    service, hpa_name = params["service"], params.get("hpa") or params["service"]
    path = params.get("path") or "/"
    if not path.startswith("/"):
        path = "/" + path
    duration = max(1, min(int(params.get("duration") or 120), settings.LOADTEST_MAX_SECONDS))
    concurrency = max(1, min(int(params.get("concurrency") or 10), settings.LOADTEST_MAX_CONCURRENCY))
    rate = params.get("rate")
    rate = min(int(rate), settings.LOADTEST_MAX_RATE) if rate else None
    max_p95 = int(params.get("max_p95_ms") or 1000)

    hpa = get_object(target, "HorizontalPodAutoscaler", hpa_name)
    if hpa is None:
        return Outcome(False, _("No HorizontalPodAutoscaler named %(name)s in namespace %(namespace)s: without one, nothing adds replicas under load; no load was sent.")
                       % {"name": hpa_name, "namespace": target.namespace})
    ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
    deployment_name = ref.get("name") if ref.get("kind", "Deployment") == "Deployment" else None
    if not deployment_name or get_object(target, "Deployment", deployment_name) is None:
        return Outcome(False, _("HPA %(hpa)s scales %(kind)s %(name)s, which is not a Deployment of namespace %(namespace)s; no load was sent.")
                       % {"hpa": hpa_name, "kind": ref.get("kind", "?"), "name": ref.get("name", "?"), "namespace": target.namespace})
    access = getattr(target.environment, "access", None) or {}
    if not access.get("kubeconfig"):
        raise DriverError(_("The environment has no kubeconfig to reach its Service with."))
    base, headers, ssl_context = service_proxy_target(access["kubeconfig"], target.namespace, service, params.get("port"))

    start, _ready, _current, _desired, _active = _replicas(target, hpa_name, deployment_name)
    start = start or 0
    maximum = (hpa.get("spec") or {}).get("maxReplicas")
    if maximum is not None and start >= maximum:
        return Outcome(False, _("Deployment %(name)s already runs %(start)s replicas, the HPA's maximum: nothing can rise. It scales down about five minutes after the last load; check again then. No load was sent.")
                       % {"name": deployment_name, "start": start})
    seen = {"replicas": start, "desired": 0, "active": None, "last_read": time.monotonic()}

    def watch(figures):
        if time.monotonic() - seen["last_read"] < AUTOSCALE_WATCH_EVERY:
            return
        seen["last_read"] = time.monotonic()
        replicas, _ready, _current, desired, active = _replicas(target, hpa_name, deployment_name)
        seen["replicas"] = max(seen["replicas"], replicas or 0)
        seen["desired"] = max(seen["desired"], desired or 0)
        seen["active"] = active

    result = run_load(base + path, concurrency=concurrency, duration=duration, rate=rate, on_second=watch,
                      headers=headers, ssl_context=ssl_context)
    replicas, _ready, _current, desired, active = _replicas(target, hpa_name, deployment_name)
    top = max(seen["replicas"], replicas or 0)
    seen["desired"] = max(seen["desired"], desired or 0)
    p95_ms = result["p95"] * 1000 if result["p95"] is not None else None
    figures = {"start": start, "top": top, "desired": seen["desired"], "p95": f"{p95_ms:.0f}" if p95_ms is not None else "–",
               "requests": result["requests"], "errors": result["errors"], "seconds": duration}
    story = _("replicas %(start)s → %(top)s (HPA desired up to %(desired)s), p95 %(p95)s ms, %(requests)s requests in %(seconds)s s, %(errors)s errors") % figures
    if result["requests"] and result["errors"] == result["requests"]:
        return Outcome(False, _("Every request to Service %(service)s failed (%(example)s): %(story)s.")
                       % {"service": service, "example": "; ".join(result["error_examples"][:1]), "story": story})
    problems = []
    wanted = params.get("min_replicas_reached")
    if top <= start or (wanted and top < int(wanted)):
        problems.append(_("replicas did not rise above %(start)s") % {"start": start} if top <= start
                        else _("replicas reached %(top)s, needs %(wanted)s") % {"top": top, "wanted": wanted})
        active = active or seen["active"]
        if active and active.get("status") == "False":
            problems.append(_("the HPA says: %(message)s") % {"message": active.get("message") or active.get("reason")})
    if p95_ms is None or p95_ms > max_p95:
        problems.append(_("p95 latency above %(bound)s ms") % {"bound": max_p95})
    if problems:
        return Outcome(False, _("%(story)s: %(problems)s.") % {"story": story, "problems": "; ".join(problems)})
    return Outcome(True, _("%(story)s.") % {"story": story})
