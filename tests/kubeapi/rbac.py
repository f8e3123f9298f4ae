"""RBAC authorization, evaluated from the Role/RoleBinding/ClusterRole/
ClusterRoleBinding objects in the store exactly as the RBAC authorizer does:
apiGroups, resources (``deployments/scale``, ``*``, ``*/scale``), verbs,
resourceNames and nonResourceURLs; bindings match User, Group and
ServiceAccount subjects.  ``system:masters`` is allowed everything, as on a
cluster.  Also seeds the default roles a fresh cluster has.
"""

from __future__ import annotations

from .errors import ApiError, forbidden

RBAC = "rbac.authorization.k8s.io"


def _subject_matches(subject, identity, binding_ns):
    kind = subject.get("kind")
    if kind == "User":
        return subject.get("name") == identity.username
    if kind == "Group":
        return subject.get("name") in identity.groups
    if kind == "ServiceAccount":
        ns = subject.get("namespace") or binding_ns
        return identity.username == f"system:serviceaccount:{ns}:{subject.get('name')}"
    return False


def _resource_matches(rule_resources, resource, subresource):
    combined = f"{resource}/{subresource}" if subresource else resource
    for r in rule_resources or []:
        if r in ("*", combined):
            return True
        if subresource and r == f"*/{subresource}":
            return True
    return False


def rule_allows(rule, attrs):
    verbs = rule.get("verbs") or []
    if "*" not in verbs and attrs["verb"] not in verbs:
        return False
    if attrs.get("path") is not None:
        for url in rule.get("nonResourceURLs") or []:
            if url == "*" or url == attrs["path"] or (url.endswith("*") and attrs["path"].startswith(url[:-1])):
                return True
        return False
    groups = rule.get("apiGroups")
    if groups is None or ("*" not in groups and attrs["group"] not in groups):
        return False
    if not _resource_matches(rule.get("resources"), attrs["resource"], attrs.get("subresource")):
        return False
    names = rule.get("resourceNames") or []
    return not names or (attrs.get("name") and attrs["name"] in names)


class Authorizer:
    def __init__(self, store):
        self.store = store

    def _role_rules(self, ref, namespace):
        if ref.get("kind") == "ClusterRole":
            role = self.store.peek(f"{RBAC}/clusterroles", "", ref.get("name"))
        else:
            role = self.store.peek(f"{RBAC}/roles", namespace, ref.get("name"))
        return (role or {}).get("rules") or []

    def rules_for(self, identity, namespace):
        """Every rule that applies to ``identity`` in ``namespace`` (None: cluster)."""
        rules = []
        with self.store.lock:
            for crb in self.store.items(f"{RBAC}/clusterrolebindings"):
                if any(_subject_matches(s, identity, "") for s in crb.get("subjects") or []):
                    rules.extend(self._role_rules(crb.get("roleRef") or {}, ""))
            if namespace:
                for rb in self.store.items(f"{RBAC}/rolebindings", namespace):
                    if any(_subject_matches(s, identity, namespace) for s in rb.get("subjects") or []):
                        rules.extend(self._role_rules(rb.get("roleRef") or {}, namespace))
        return rules

    def allowed(self, identity, attrs):
        if "system:masters" in identity.groups:
            return True
        return any(rule_allows(r, attrs) for r in self.rules_for(identity, attrs.get("namespace")))

    def check(self, identity, attrs):
        if not self.allowed(identity, attrs):
            raise denial(identity, attrs)


def _rule_attrs(rule):
    """Every (verb, group, resource, name) request a rule grants, as authorizer attributes."""
    if rule.get("nonResourceURLs"):
        for url in rule["nonResourceURLs"]:
            for verb in rule.get("verbs") or []:
                yield {"verb": verb, "path": url}
        return
    for group in rule.get("apiGroups") or []:
        for res in rule.get("resources") or []:
            resource, _, sub = res.partition("/")
            for verb in rule.get("verbs") or []:
                for name in rule.get("resourceNames") or [""]:
                    yield {"verb": verb, "group": group, "resource": resource, "subresource": sub, "name": name}


def _go_list(values):
    return "[" + " ".join(f'"{v}"' for v in values) + "]"


def _format_rule(rule):
    parts = []
    for key, label in (("apiGroups", "APIGroups"), ("resources", "Resources"), ("resourceNames", "ResourceNames"),
                       ("nonResourceURLs", "NonResourceURLs"), ("verbs", "Verbs")):
        if rule.get(key):
            parts.append(f"{label}:{_go_list(rule[key])}")
    return "{" + ", ".join(parts) + "}"


def check_escalation(authorizer, identity, rtype, obj, namespace):
    """RBAC escalation prevention: nobody grants (or binds) permissions they do not hold
    unless they have the ``escalate`` (roles) or ``bind`` (bindings) verb."""
    if "system:masters" in identity.groups:
        return
    name = obj.get("metadata", {}).get("name", "")
    base = {"group": RBAC, "namespace": namespace or "", "subresource": ""}
    if rtype.kind in ("Role", "ClusterRole"):
        if authorizer.allowed(identity, dict(base, verb="escalate", resource=rtype.plural, name=name)):
            return
        wanted = obj.get("rules") or []
    else:
        ref = obj.get("roleRef") or {}
        role_plural = "clusterroles" if ref.get("kind") == "ClusterRole" else "roles"
        if authorizer.allowed(identity, dict(base, verb="bind", resource=role_plural, name=ref.get("name", ""))):
            return
        wanted = authorizer._role_rules(ref, namespace or "")
    held = authorizer.rules_for(identity, namespace or None)
    missing = [r for r in wanted
               if not all(any(rule_allows(h, dict(a, namespace=namespace or "")) for h in held)
                          for a in _rule_attrs(r))]
    if missing:
        groups = " ".join(f'"{g}"' for g in identity.groups)
        raise forbidden(rtype.plural, rtype.group, name,
                        f'user "{identity.username}" (groups=[{groups}]) is attempting to grant RBAC permissions '
                        "not currently held:\n" + "\n".join(_format_rule(r) for r in missing))


def denial(identity, attrs):
    user = identity.username
    if attrs.get("path") is not None:
        return ApiError(403, "Forbidden", f'forbidden: User "{user}" cannot {attrs["verb"]} path "{attrs["path"]}"', {})
    resource = attrs["resource"]
    combined = f"{resource}/{attrs['subresource']}" if attrs.get("subresource") else resource
    scope = (f'in the namespace "{attrs["namespace"]}"' if attrs.get("namespace") else "at the cluster scope")
    why = (f'User "{user}" cannot {attrs["verb"]} resource "{combined}" '
           f'in API group "{attrs["group"]}" {scope}')
    return forbidden(resource, attrs["group"], attrs.get("name"), why)


# --- the roles a fresh cluster starts with ------------------------------------------

_READ = ["get", "list", "watch"]
_WRITE = ["create", "delete", "deletecollection", "patch", "update"]
_WORKLOADS = [
    {"apiGroups": [""], "resources": ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy",
                                      "pods/eviction", "services", "services/proxy", "configmaps", "secrets",
                                      "serviceaccounts", "persistentvolumeclaims", "events"]},
    {"apiGroups": ["apps"], "resources": ["deployments", "deployments/scale", "deployments/rollback",
                                          "replicasets", "replicasets/scale", "statefulsets", "daemonsets"]},
    {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"]},
    {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses", "networkpolicies"]},
    {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"]},
]
_VIEW_EXTRA = [
    {"apiGroups": [""], "resources": ["pods/log", "pods/status", "resourcequotas", "resourcequotas/status",
                                      "limitranges", "namespaces", "namespaces/status", "replicationcontrollers",
                                      "endpoints", "bindings"], "verbs": _READ},
    {"apiGroups": ["apps"], "resources": ["deployments/status", "replicasets/status"], "verbs": _READ},
    {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers/status"], "verbs": _READ},
    {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses/status"], "verbs": _READ},
    {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets/status"], "verbs": _READ},
    # metrics-server's system:aggregated-metrics-reader is aggregated into view, edit and admin
    {"apiGroups": ["metrics.k8s.io"], "resources": ["pods", "nodes"], "verbs": _READ},
]


def _with_verbs(rules, verbs, skip_secrets=False):
    out = []
    for r in rules:
        resources = [x for x in r["resources"] if not (skip_secrets and x == "secrets")]
        out.append({"apiGroups": r["apiGroups"], "resources": resources, "verbs": list(verbs)})
    return out


def default_cluster_roles():
    view = _with_verbs(_WORKLOADS, _READ, skip_secrets=True) + _VIEW_EXTRA
    edit = _with_verbs(_WORKLOADS, _READ + _WRITE) + _VIEW_EXTRA + [
        {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]}]
    admin = edit + [
        {"apiGroups": [RBAC], "resources": ["roles", "rolebindings"], "verbs": _READ + _WRITE},
        {"apiGroups": ["authorization.k8s.io"], "resources": ["localsubjectaccessreviews"], "verbs": ["create"]},
    ]
    basic = [{"apiGroups": ["authorization.k8s.io"],
              "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], "verbs": ["create"]},
             {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"], "verbs": ["create"]}]
    discovery = [{"nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi",
                                      "/openapi/*", "/readyz", "/version", "/version/"], "verbs": ["get"]}]
    return {
        "cluster-admin": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                          {"nonResourceURLs": ["*"], "verbs": ["*"]}],
        "admin": admin, "edit": edit, "view": view,
        "system:basic-user": basic, "system:discovery": discovery, "system:public-info-viewer": discovery[:1],
    }


DEFAULT_BINDINGS = {
    "cluster-admin": ("Group", "system:masters"),
    "system:basic-user": ("Group", "system:authenticated"),
    "system:discovery": ("Group", "system:authenticated"),
    "system:public-info-viewer": ("Group", "system:authenticated"),
}
