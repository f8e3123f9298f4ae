"""Admission: what the real API server checks or mutates between decoding a
request and storing it.

* NamespaceLifecycle: no content in a missing namespace (404) or in one being
  terminated (403); the built-in namespaces cannot be deleted.
* ServiceAccount: a Pod's service account must exist.
* LimitRanger: container defaults from LimitRanges, and min/max checks.
* ResourceQuota: a create that would exceed a quota is refused with 403
  ``exceeded quota: NAME, requested: ..., used: ..., limited: ...``.
* PodSecurity: in a namespace labelled ``pod-security.kubernetes.io/enforce: baseline`` or
  ``restricted``, a Pod that breaks the level is refused with 403 ``violates PodSecurity
  "LEVEL:latest": ...`` (the checks most pods meet or miss: privileged, host namespaces,
  hostPath, host ports, added capabilities; for restricted also allowPrivilegeEscalation,
  capabilities.drop ALL, runAsNonRoot, runAsUser 0, seccompProfile, volume types).
"""

from __future__ import annotations

from fractions import Fraction

from . import quantity
from .errors import ApiError, forbidden, not_found
from .meta import dig, ensure

PROTECTED_NAMESPACES = ("default", "kube-system", "kube-public")
_COMPUTE = ("requests.cpu", "requests.memory", "limits.cpu", "limits.memory",
            "requests.ephemeral-storage", "limits.ephemeral-storage")
_ALIASES = {"cpu": "requests.cpu", "memory": "requests.memory", "ephemeral-storage": "requests.ephemeral-storage"}
_COUNTED = {"/pods": "pods", "/services": "services", "/configmaps": "configmaps", "/secrets": "secrets",
            "/persistentvolumeclaims": "persistentvolumeclaims", "/resourcequotas": "resourcequotas"}


def check_namespace(store, rtype, ns, name):
    if not rtype.namespaced:
        return
    nso = store.peek("/namespaces", "", ns)
    if nso is None:
        raise not_found("namespaces", "", ns)
    if nso["metadata"].get("deletionTimestamp") or dig(nso, "status", "phase") == "Terminating":
        raise forbidden(rtype.plural, rtype.group, name,
                        f"unable to create new content in namespace {ns} because it is being terminated",
                        causes=[{"reason": "NamespaceTerminating", "field": "metadata.namespace",
                                 "message": f"namespace {ns} is being terminated"}])


def check_service_account(store, pod):
    ns, sa = pod["metadata"].get("namespace"), dig(pod, "spec", "serviceAccountName", default="default")
    if store.peek("/serviceaccounts", ns, sa) is None:
        raise forbidden("pods", "", pod["metadata"]["name"],
                        f'error looking up service account {ns}/{sa}: serviceaccount "{sa}" not found')


# --- LimitRanger ---------------------------------------------------------------------

_BASELINE_CAPABILITIES = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
                          "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}
_RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}


def pod_security_violations(pod, level):
    """What the Pod Security Standard `level` ("baseline", "restricted") finds in a pod, as the
    PodSecurity admission words it (empty: allowed)."""
    spec = pod.get("spec") or {}
    pod_context = spec.get("securityContext") or {}
    containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    found = []

    def names(items):
        return ", ".join(f'"{name}"' for name in items)

    def containers_where(test):
        return [c.get("name") for c in containers if test(c, c.get("securityContext") or {})]

    def noun(items):
        return "container" if len(items) == 1 else "containers"

    host = [f"{key}={'true'}" for key in ("hostNetwork", "hostPID", "hostIPC") if spec.get(key)]
    if host:
        found.append(f"host namespaces ({', '.join(host)})")
    privileged = containers_where(lambda c, sc: sc.get("privileged"))
    if privileged:
        found.append(f"privileged ({noun(privileged)} {names(privileged)} must not set securityContext.privileged=true)")
    added = containers_where(lambda c, sc: set(dig(sc, "capabilities", "add", default=[]) or []) - (_BASELINE_CAPABILITIES if level == "baseline" else {"NET_BIND_SERVICE"}))
    if added:
        found.append(f"unrestricted capabilities ({noun(added)} {names(added)} must not include capabilities beyond the allowed set in securityContext.capabilities.add)")
    host_path = [v.get("name") for v in spec.get("volumes") or [] if "hostPath" in v]
    if host_path:
        found.append(f"hostPath volumes ({names(host_path)})")
    host_ports = containers_where(lambda c, sc: any(p.get("hostPort") for p in c.get("ports") or []))
    if host_ports:
        found.append(f"hostPort ({noun(host_ports)} {names(host_ports)} uses hostPort)")
    if level != "restricted":
        return found
    other_volumes = [v.get("name") for v in spec.get("volumes") or [] if not set(v) - {"name"} <= _RESTRICTED_VOLUMES and "hostPath" not in v]
    if other_volumes:
        found.append(f"restricted volume types (volumes {names(other_volumes)} use restricted volume types)")
    escalation = containers_where(lambda c, sc: sc.get("allowPrivilegeEscalation") is not False)
    if escalation:
        found.append(f"allowPrivilegeEscalation != false ({noun(escalation)} {names(escalation)} must set securityContext.allowPrivilegeEscalation=false)")
    undropped = containers_where(lambda c, sc: "ALL" not in (dig(sc, "capabilities", "drop", default=[]) or []))
    if undropped:
        found.append(f'unrestricted capabilities ({noun(undropped)} {names(undropped)} must set securityContext.capabilities.drop=["ALL"])')
    root = containers_where(lambda c, sc: sc.get("runAsNonRoot", pod_context.get("runAsNonRoot")) is not True)
    if root:
        found.append(f"runAsNonRoot != true (pod or {noun(root)} {names(root)} must set securityContext.runAsNonRoot=true)")
    uid_zero = containers_where(lambda c, sc: sc.get("runAsUser", pod_context.get("runAsUser")) == 0)
    if uid_zero:
        found.append(f"runAsUser=0 (pod or {noun(uid_zero)} {names(uid_zero)} must not set runAsUser=0)")
    seccomp = containers_where(lambda c, sc: dig(sc, "seccompProfile", "type", default=dig(pod_context, "seccompProfile", "type")) not in ("RuntimeDefault", "Localhost"))
    if seccomp:
        found.append(f'seccompProfile (pod or {noun(seccomp)} {names(seccomp)} must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")')
    return found


def check_pod_security(store, pod):
    """The PodSecurity admission's `enforce` mode, from the namespace's label."""
    ns = pod["metadata"].get("namespace", "")
    nso = store.peek("/namespaces", "", ns) or {}
    level = (dig(nso, "metadata", "labels", default={}) or {}).get("pod-security.kubernetes.io/enforce")
    if level not in ("baseline", "restricted"):
        return
    found = pod_security_violations(pod, level)
    if found:
        raise forbidden("pods", "", pod["metadata"].get("name", ""), f'violates PodSecurity "{level}:latest": ' + ", ".join(found))


def apply_limit_ranges(store, pod):
    ns = pod["metadata"].get("namespace")
    notes = {"request": {}, "limit": {}}
    violations = []
    for lr in store.items("/limitranges", ns):
        for item in dig(lr, "spec", "limits", default=[]) or []:
            if item.get("type", "Container") != "Container":
                continue
            default = dict(item.get("max") or {})
            default.update(item.get("default") or {})
            default_req = dict(item.get("min") or {})
            default_req.update(item.get("default") or {})
            default_req.update(item.get("defaultRequest") or {})
            for c in dig(pod, "spec", "containers", default=[]) or []:
                res = ensure(c, "resources")
                limits, requests = res.get("limits") or {}, res.get("requests") or {}
                for r, v in default.items():
                    if r not in limits:
                        limits[r] = v
                        notes["limit"].setdefault(c["name"], []).append(r)
                for r, v in default_req.items():
                    if r not in requests:
                        requests[r] = limits.get(r, v) if r not in (item.get("defaultRequest") or {}) else v
                        notes["request"].setdefault(c["name"], []).append(r)
                if limits:
                    res["limits"] = limits
                if requests:
                    res["requests"] = requests
                for r, mx in (item.get("max") or {}).items():
                    lim = limits.get(r)
                    if lim is not None and quantity.parse(lim) > quantity.parse(mx):
                        violations.append(f"maximum {r} usage per Container is {mx}, but limit is {lim}")
                for r, mn in (item.get("min") or {}).items():
                    req = requests.get(r)
                    if req is not None and quantity.parse(req) < quantity.parse(mn):
                        violations.append(f"minimum {r} usage per Container is {mn}, but request is {req}")
    if violations:
        text = violations[0] if len(violations) == 1 else "[" + ", ".join(violations) + "]"
        raise forbidden("pods", "", pod["metadata"]["name"], text)
    parts = []
    for what in ("request", "limit"):
        for cname, rs in notes[what].items():
            parts.append(f"{', '.join(sorted(set(rs)))} {what} for container {cname}")
    if parts:
        ann = ensure(pod, "metadata").setdefault("annotations", {})
        ann["kubernetes.io/limit-ranger"] = "LimitRanger plugin set: " + "; ".join(parts)


# --- ResourceQuota -------------------------------------------------------------------

def pod_usage(pod):
    usage = {"pods": Fraction(1)}
    for c in dig(pod, "spec", "containers", default=[]) or []:
        res = c.get("resources") or {}
        for kind in ("requests", "limits"):
            for r, v in (res.get(kind) or {}).items():
                key = f"{kind}.{r}"
                try:
                    usage[key] = usage.get(key, Fraction(0)) + quantity.parse(v)
                except ValueError:
                    pass
    return usage


def _pod_counts(pod):
    return dig(pod, "status", "phase") not in ("Succeeded", "Failed") and \
        not pod["metadata"].get("deletionTimestamp")


def object_usage(key, obj):
    """Quota resources consumed by one object of type ``key``."""
    plural_group = key.split("/", 1)
    count_name = f"count/{plural_group[1]}" + (f".{plural_group[0]}" if plural_group[0] else "")
    usage = {count_name: Fraction(1)}
    if key == "/pods":
        if not _pod_counts(obj):
            return {}
        usage.update(pod_usage(obj))
    elif key in _COUNTED:
        usage[_COUNTED[key]] = Fraction(1)
    if key == "/services":
        stype = dig(obj, "spec", "type")
        if stype in ("NodePort", "LoadBalancer"):
            usage["services.nodeports"] = Fraction(len(dig(obj, "spec", "ports", default=[]) or []))
        if stype == "LoadBalancer":
            usage["services.loadbalancers"] = Fraction(1)
    if key == "/persistentvolumeclaims":
        storage = dig(obj, "spec", "resources", "requests", "storage")
        if storage:
            usage["requests.storage"] = quantity.parse(storage)
    return usage


def namespace_usage(store, ns, wanted):
    used = {r: Fraction(0) for r in wanted}
    keys = {"/pods", "/services", "/configmaps", "/secrets", "/persistentvolumeclaims", "/resourcequotas"}
    for r in wanted:
        if r.startswith("count/"):
            plural, _, group = r[6:].partition(".")
            keys.add(f"{group}/{plural}")
    for key in keys:
        for obj in store.items(key, ns):
            for r, v in object_usage(key, obj).items():
                canonical = _ALIASES.get(r, r)
                for want in wanted:
                    if _ALIASES.get(want, want) == canonical:
                        used[want] += v
    return used


def check_quota(store, rtype, obj):
    ns = obj["metadata"].get("namespace")
    quotas = store.items("/resourcequotas", ns)
    if not quotas:
        return
    delta = {}
    for r, v in object_usage(rtype.key, obj).items():
        delta[_ALIASES.get(r, r)] = v
    for q in quotas:
        hard = dig(q, "spec", "hard", default={}) or {}
        if rtype.key == "/pods":
            missing = []
            for r in hard:
                canonical = _ALIASES.get(r, r)
                if canonical in _COMPUTE:
                    kind, _, res = canonical.partition(".")
                    lacking = [c["name"] for c in dig(obj, "spec", "containers", default=[])
                               if res not in ((c.get("resources") or {}).get(kind) or {})]
                    if lacking:
                        missing.append(f"{canonical} for: {','.join(lacking)}")
            if missing:
                raise forbidden("pods", "", obj["metadata"]["name"],
                                f"failed quota: {q['metadata']['name']}: must specify {'; '.join(missing)}")
        relevant = [r for r in hard if _ALIASES.get(r, r) in delta]
        if not relevant:
            continue
        used = namespace_usage(store, ns, relevant)
        exceeded = sorted(r for r in relevant
                          if used[r] + delta[_ALIASES.get(r, r)] > quantity.parse(hard[r]))
        if exceeded:
            def show(values):
                return ",".join(f"{r}={quantity.fmt(values[r], r)}" for r in exceeded)
            requested = {r: delta[_ALIASES.get(r, r)] for r in exceeded}
            limited = {r: quantity.parse(hard[r]) for r in exceeded}
            raise forbidden(rtype.plural, rtype.group, obj["metadata"]["name"],
                            f"exceeded quota: {q['metadata']['name']}, requested: {show(requested)}, "
                            f"used: {show(used)}, limited: {show(limited)}")


def quota_status(store, quota):
    hard = dig(quota, "spec", "hard", default={}) or {}
    used = namespace_usage(store, quota["metadata"]["namespace"], list(hard))
    return {"hard": dict(hard), "used": {r: quantity.fmt(v, r) for r, v in used.items()}}


def check_namespace_delete(name):
    if name in PROTECTED_NAMESPACES:
        raise ApiError(403, "Forbidden", f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                       {"name": name, "kind": "namespaces"})
