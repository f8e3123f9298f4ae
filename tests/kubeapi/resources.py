"""The catalogue of API resources the stand-in serves, and version conversion.

One :class:`ResourceType` per stored resource (``apps/deployments``...) says
how it is addressed (group, versions, plural, scope), what discovery shows
(verbs, short names, subresources) and which conventions apply to it
(status subresource, ``metadata.generation``, the name rule).  Only
HorizontalPodAutoscaler is served in two versions; it is stored as
``autoscaling/v2`` and converted for ``autoscaling/v1`` readers and writers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from .meta import clone

STANDARD_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class Subresource:
    name: str
    kind: str
    verbs: tuple
    group: str | None = None     # when the subresource kind lives in another group
    version: str | None = None


@dataclass
class ResourceType:
    group: str
    versions: tuple
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple = ()
    verbs: tuple = STANDARD_VERBS
    subresources: tuple = ()
    has_status: bool = False
    generation: bool = False
    categories: tuple = ()
    name_rule: str = "subdomain"     # subdomain | label | dns1035 | path
    stored: bool = True              # False for review-style "virtual" resources
    field_selectors: tuple = ()
    # Versions served only while the stand-in plays an older cluster (`serve_legacy_versions`).
    legacy_versions: tuple = ()
    # {version: text} for versions the API still serves but has deprecated: every answer for
    # them carries the text in a `Warning: 299 - "..."` header, as a real API server does.
    deprecated: dict = field(default_factory=dict)
    sub_by_name: dict = field(default_factory=dict)

    def __post_init__(self):
        if not self.singular:
            self.singular = self.kind.lower()
        self.sub_by_name = {s.name: s for s in self.subresources}

    @property
    def key(self):
        return f"{self.group}/{self.plural}"

    @property
    def storage_version(self):
        return self.versions[0]

    def serves(self, version, legacy=False):
        return version in self.versions or (legacy and version in self.legacy_versions)

    def all_versions(self, legacy=False):
        return self.versions + (self.legacy_versions if legacy else ())

    def api_version(self, version=None):
        version = version or self.storage_version
        return f"{self.group}/{version}" if self.group else version

    def list_kind(self):
        return self.kind + "List"


STATUS = Subresource("status", "", ("get", "patch", "update"))


def _status(kind):
    return Subresource("status", kind, ("get", "patch", "update"))


_POD_FIELDS = ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
               "spec.hostNetwork", "status.phase", "status.podIP", "status.podIPs", "status.nominatedNodeName")
_EVENT_FIELDS = ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                 "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                 "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type")

ALL_TYPES = [
    # core/v1
    ResourceType("", ("v1",), "namespaces", "Namespace", False, short_names=("ns",),
                 verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
                 subresources=(_status("Namespace"), Subresource("finalize", "Namespace", ("update",))),
                 has_status=True, name_rule="label", field_selectors=("status.phase",)),
    ResourceType("", ("v1",), "nodes", "Node", False, short_names=("no",),
                 subresources=(_status("Node"),), has_status=True, field_selectors=("spec.unschedulable",)),
    ResourceType("", ("v1",), "pods", "Pod", True, short_names=("po",), categories=("all",),
                 subresources=(_status("Pod"), Subresource("log", "Pod", ("get",)), Subresource("exec", "PodExecOptions", ("create",)),
                               Subresource("eviction", "Eviction", ("create",), "policy", "v1")),
                 has_status=True, generation=True, field_selectors=_POD_FIELDS),
    ResourceType("", ("v1",), "services", "Service", True, short_names=("svc",), categories=("all",),
                 verbs=("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"),
                 subresources=(_status("Service"), Subresource("proxy", "ServiceProxyOptions",
                                                               ("create", "delete", "get", "patch", "update"))),
                 has_status=True, name_rule="dns1035"),
    ResourceType("", ("v1",), "configmaps", "ConfigMap", True, short_names=("cm",)),
    ResourceType("", ("v1",), "secrets", "Secret", True, field_selectors=("type",)),
    ResourceType("", ("v1",), "serviceaccounts", "ServiceAccount", True, short_names=("sa",),
                 subresources=(Subresource("token", "TokenRequest", ("create",), "authentication.k8s.io", "v1"),)),
    ResourceType("", ("v1",), "events", "Event", True, short_names=("ev",), field_selectors=_EVENT_FIELDS),
    ResourceType("", ("v1",), "resourcequotas", "ResourceQuota", True, short_names=("quota",),
                 subresources=(_status("ResourceQuota"),), has_status=True),
    ResourceType("", ("v1",), "limitranges", "LimitRange", True, short_names=("limits",)),
    ResourceType("", ("v1",), "persistentvolumeclaims", "PersistentVolumeClaim", True, short_names=("pvc",),
                 subresources=(_status("PersistentVolumeClaim"),), has_status=True),
    # Served and deprecated since 1.33, with the real server's warning text.
    ResourceType("", ("v1",), "endpoints", "Endpoints", True, short_names=("ep",),
                 deprecated={"v1": "v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice"}),
    # apps/v1
    ResourceType("apps", ("v1",), "deployments", "Deployment", True, short_names=("deploy",), categories=("all",),
                 subresources=(_status("Deployment"),
                               Subresource("scale", "Scale", ("get", "patch", "update"), "autoscaling", "v1")),
                 has_status=True, generation=True),
    ResourceType("apps", ("v1",), "replicasets", "ReplicaSet", True, short_names=("rs",), categories=("all",),
                 subresources=(_status("ReplicaSet"),
                               Subresource("scale", "Scale", ("get", "patch", "update"), "autoscaling", "v1")),
                 has_status=True, generation=True, field_selectors=("status.replicas",)),
    # autoscaling: stored as v2, also served as v1
    ResourceType("autoscaling", ("v2", "v1"), "horizontalpodautoscalers", "HorizontalPodAutoscaler", True,
                 short_names=("hpa",), categories=("all",),
                 subresources=(_status("HorizontalPodAutoscaler"),), has_status=True, generation=True),
    # networking.k8s.io/v1
    ResourceType("networking.k8s.io", ("v1",), "ingresses", "Ingress", True, short_names=("ing",),
                 subresources=(_status("Ingress"),), has_status=True, generation=True),
    ResourceType("networking.k8s.io", ("v1",), "networkpolicies", "NetworkPolicy", True, short_names=("netpol",),
                 generation=True),
    # policy/v1
    ResourceType("policy", ("v1",), "poddisruptionbudgets", "PodDisruptionBudget", True, short_names=("pdb",),
                 subresources=(_status("PodDisruptionBudget"),), has_status=True, generation=True),
    # storage.k8s.io/v1; v1beta1 (CSIStorageCapacity only, deprecated) as clusters 1.24-1.26 served it
    ResourceType("storage.k8s.io", ("v1",), "storageclasses", "StorageClass", False, short_names=("sc",)),
    ResourceType("storage.k8s.io", ("v1",), "csistoragecapacities", "CSIStorageCapacity", True,
                 legacy_versions=("v1beta1",),
                 deprecated={"v1beta1": "storage.k8s.io/v1beta1 CSIStorageCapacity is deprecated in v1.24+, "
                                        "unavailable in v1.27+; use storage.k8s.io/v1 CSIStorageCapacity"}),
    # rbac.authorization.k8s.io/v1
    ResourceType("rbac.authorization.k8s.io", ("v1",), "roles", "Role", True, name_rule="path"),
    ResourceType("rbac.authorization.k8s.io", ("v1",), "rolebindings", "RoleBinding", True, name_rule="path"),
    ResourceType("rbac.authorization.k8s.io", ("v1",), "clusterroles", "ClusterRole", False, name_rule="path"),
    ResourceType("rbac.authorization.k8s.io", ("v1",), "clusterrolebindings", "ClusterRoleBinding", False,
                 name_rule="path"),
    # review-style APIs: create only, never stored
    ResourceType("authorization.k8s.io", ("v1",), "selfsubjectaccessreviews", "SelfSubjectAccessReview", False,
                 verbs=("create",), stored=False),
    ResourceType("authorization.k8s.io", ("v1",), "subjectaccessreviews", "SubjectAccessReview", False,
                 verbs=("create",), stored=False),
    ResourceType("authorization.k8s.io", ("v1",), "localsubjectaccessreviews", "LocalSubjectAccessReview", True,
                 verbs=("create",), stored=False),
    ResourceType("authorization.k8s.io", ("v1",), "selfsubjectrulesreviews", "SelfSubjectRulesReview", False,
                 verbs=("create",), stored=False),
    ResourceType("authentication.k8s.io", ("v1",), "tokenreviews", "TokenReview", False,
                 verbs=("create",), stored=False),
    ResourceType("authentication.k8s.io", ("v1",), "selfsubjectreviews", "SelfSubjectReview", False,
                 verbs=("create",), stored=False),
]

BY_KEY = {t.key: t for t in ALL_TYPES}
GROUP_ORDER = ["", "apps", "autoscaling", "networking.k8s.io", "policy", "storage.k8s.io", "rbac.authorization.k8s.io",
               "authorization.k8s.io", "authentication.k8s.io"]


def lookup(group, version, plural, legacy=False):
    """The type served at ``/apis/{group}/{version}/{plural}``, or None."""
    rtype = BY_KEY.get(f"{group}/{plural}")
    if rtype is None or not rtype.serves(version, legacy):
        return None
    return rtype


def by_kind(api_version, kind, legacy=False):
    group, _, version = api_version.rpartition("/")
    for t in ALL_TYPES:
        if t.group == group and t.kind == kind and t.serves(version, legacy):
            return t
    return None


def served_versions(legacy=False):
    """{group: [versions, preferred first]} in discovery order."""
    out = {}
    for group in GROUP_ORDER:
        versions = []
        for t in ALL_TYPES:
            if t.group == group:
                for v in t.all_versions(legacy):
                    if v not in versions:
                        versions.append(v)
        out[group] = versions
    return out


def deprecation_warning(rtype, version):
    """The `Warning` header value for a deprecated version (RFC 7234 code 299, agent "-"), or None."""
    text = rtype.deprecated.get(version)
    if not text:
        return None
    return '299 - "' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --- version conversion -------------------------------------------------------

def to_version(rtype, obj, version):
    """Convert a stored object to the representation of ``version``."""
    if obj is None:
        return None
    if rtype.key == "autoscaling/horizontalpodautoscalers" and version == "v1":
        obj = _hpa_v2_to_v1(obj)
    obj = dict(obj)
    obj["apiVersion"] = rtype.api_version(version)
    obj["kind"] = rtype.kind
    return obj


def from_version(rtype, obj, version):
    """Convert a (possibly partial) object sent in ``version`` to storage form."""
    if rtype.key == "autoscaling/horizontalpodautoscalers" and version == "v1":
        obj = _hpa_v1_to_v2(obj)
    obj = dict(obj)
    obj["apiVersion"] = rtype.api_version()
    return obj


_HPA_CONDITIONS = "autoscaling.alpha.kubernetes.io/conditions"


def _hpa_v2_to_v1(obj):
    out = clone(obj)
    spec = out.get("spec") or {}
    metrics = spec.pop("metrics", None) or []
    spec.pop("behavior", None)
    for m in metrics:
        res = m.get("resource") or {}
        if m.get("type") == "Resource" and res.get("name") == "cpu" \
                and (res.get("target") or {}).get("type") == "Utilization":
            spec["targetCPUUtilizationPercentage"] = res["target"].get("averageUtilization")
    status = out.get("status")
    if isinstance(status, dict):
        status.setdefault("currentReplicas", 0)
        status.setdefault("desiredReplicas", 0)
        conditions = status.pop("conditions", None)
        current = status.pop("currentMetrics", None) or []
        for m in current:
            res = m.get("resource") or {}
            if m.get("type") == "Resource" and res.get("name") == "cpu":
                util = (res.get("current") or {}).get("averageUtilization")
                if util is not None:
                    status["currentCPUUtilizationPercentage"] = util
        if conditions:
            ann = out.setdefault("metadata", {}).setdefault("annotations", {})
            ann[_HPA_CONDITIONS] = json.dumps(conditions, separators=(",", ":"))
    return out


def _hpa_v1_to_v2(obj):
    out = clone(obj)
    spec = out.get("spec")
    if isinstance(spec, dict) and "targetCPUUtilizationPercentage" in spec:
        target = spec.pop("targetCPUUtilizationPercentage")
        if target is not None:
            spec["metrics"] = [{"type": "Resource", "resource": {
                "name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}}}]
    status = out.get("status")
    if isinstance(status, dict):
        util = status.pop("currentCPUUtilizationPercentage", None)
        if util is not None:
            status["currentMetrics"] = [{"type": "Resource", "resource": {
                "name": "cpu", "current": {"averageUtilization": util}}}]
    ann = (out.get("metadata") or {}).get("annotations")
    if isinstance(ann, dict) and _HPA_CONDITIONS in ann:
        ann.pop(_HPA_CONDITIONS)
        if not ann:
            out["metadata"].pop("annotations")
    return out
