"""Raw Kubernetes manifests: parse, validate against what the cluster serves, diff, apply.

The order of work is the promise made to the person applying: every document is parsed
and checked (YAML, shape, kind and apiVersion served by *this* cluster, namespace) before
a single write is sent. Discovery costs a handful of requests whatever the number of
objects: `/api`, `/apis`, then one resource list per group/version the manifests use,
cached on the `Discovery` object for the job.

Writes are server-side apply under the panel's field manager (`FIELD_MANAGER`), so
the server merges, validates and owns the result; the dry run is the same request with
`dryRun=All`, compared with the live object to show a diff.

Only job code calls the functions that take an ApiClient (views never talk to clusters).
"""

from __future__ import annotations

import base64
import difflib
import json
import re
from dataclasses import dataclass, field

import yaml

from clusters.drivers.base import DriverError, NotFound
from clusters.drivers.kubernetes import FIELD_MANAGER, api_errors, describe, response_warnings
from panel.lib import safe_yaml

# Versions the API server stopped serving, and what replaces them (kind-specific where the
# same old group carried several kinds to different new homes).
REMOVED_VERSIONS = {
    ("autoscaling/v2beta1", "HorizontalPodAutoscaler"): ("autoscaling/v2", "1.25"),
    ("autoscaling/v2beta2", "HorizontalPodAutoscaler"): ("autoscaling/v2", "1.26"),
    ("extensions/v1beta1", "Deployment"): ("apps/v1", "1.16"),
    ("extensions/v1beta1", "DaemonSet"): ("apps/v1", "1.16"),
    ("extensions/v1beta1", "ReplicaSet"): ("apps/v1", "1.16"),
    ("extensions/v1beta1", "NetworkPolicy"): ("networking.k8s.io/v1", "1.16"),
    ("extensions/v1beta1", "Ingress"): ("networking.k8s.io/v1", "1.22"),
    ("extensions/v1beta1", "PodSecurityPolicy"): (None, "1.25"),
    ("policy/v1beta1", "PodSecurityPolicy"): (None, "1.25"),
    ("apps/v1beta1", "Deployment"): ("apps/v1", "1.16"),
    ("apps/v1beta1", "StatefulSet"): ("apps/v1", "1.16"),
    ("apps/v1beta2", "Deployment"): ("apps/v1", "1.16"),
    ("apps/v1beta2", "DaemonSet"): ("apps/v1", "1.16"),
    ("apps/v1beta2", "ReplicaSet"): ("apps/v1", "1.16"),
    ("apps/v1beta2", "StatefulSet"): ("apps/v1", "1.16"),
    ("networking.k8s.io/v1beta1", "Ingress"): ("networking.k8s.io/v1", "1.22"),
    ("networking.k8s.io/v1beta1", "IngressClass"): ("networking.k8s.io/v1", "1.22"),
    ("policy/v1beta1", "PodDisruptionBudget"): ("policy/v1", "1.25"),
    ("batch/v1beta1", "CronJob"): ("batch/v1", "1.25"),
    ("discovery.k8s.io/v1beta1", "EndpointSlice"): ("discovery.k8s.io/v1", "1.25"),
    ("events.k8s.io/v1beta1", "Event"): ("events.k8s.io/v1", "1.25"),
    ("node.k8s.io/v1beta1", "RuntimeClass"): ("node.k8s.io/v1", "1.25"),
}
# Whole groups/versions that moved, for kinds not listed above.
REMOVED_GROUP_VERSIONS = {
    "rbac.authorization.k8s.io/v1beta1": ("rbac.authorization.k8s.io/v1", "1.22"),
    "storage.k8s.io/v1beta1": ("storage.k8s.io/v1", "1.22"),
    "apiextensions.k8s.io/v1beta1": ("apiextensions.k8s.io/v1", "1.22"),
    "admissionregistration.k8s.io/v1beta1": ("admissionregistration.k8s.io/v1", "1.22"),
    "scheduling.k8s.io/v1beta1": ("scheduling.k8s.io/v1", "1.22"),
    "coordination.k8s.io/v1beta1": ("coordination.k8s.io/v1", "1.22"),
    "certificates.k8s.io/v1beta1": ("certificates.k8s.io/v1", "1.22"),
    "networking.k8s.io/v1beta1": ("networking.k8s.io/v1", "1.22"),
    "flowcontrol.apiserver.k8s.io/v1beta1": ("flowcontrol.apiserver.k8s.io/v1", "1.26"),
    "flowcontrol.apiserver.k8s.io/v1beta2": ("flowcontrol.apiserver.k8s.io/v1", "1.29"),
    "flowcontrol.apiserver.k8s.io/v1beta3": ("flowcontrol.apiserver.k8s.io/v1", "1.32"),
}

# Apply order: what others refer to goes first (like kubectl/helm install order).
APPLY_ORDER = [
    "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy", "PodDisruptionBudget",
    "ServiceAccount", "Secret", "ConfigMap", "StorageClass", "PersistentVolume", "PersistentVolumeClaim",
    "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Service",
    "DaemonSet", "Pod", "ReplicaSet", "Deployment", "HorizontalPodAutoscaler", "StatefulSet", "Job",
    "CronJob", "IngressClass", "Ingress",
]

# Fields the server writes: never part of a diff.
SERVER_METADATA = ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds")


class ManifestInvalid(DriverError):
    """The manifests were refused before anything was sent; `problems` lists each one."""

    def __init__(self, problems):
        self.problems = list(problems)
        if len(self.problems) == 1:
            message = f"Manifest refused, nothing was sent: {self.problems[0]}"
        else:
            message = f"Manifests refused ({len(self.problems)} problems), nothing was sent:\n" + "\n".join(f"- {p}" for p in self.problems)
        super().__init__(message)


@dataclass
class ManifestObject:
    """One object of a manifest set, with where it came from (for messages)."""

    source: str
    document: int
    line: int
    body: dict
    # Filled by validation from discovery:
    plural: str = ""
    namespaced: bool = True

    @property
    def api_version(self):
        return self.body.get("apiVersion", "")

    @property
    def kind(self):
        return self.body.get("kind", "")

    @property
    def name(self):
        return (self.body.get("metadata") or {}).get("name", "")

    @property
    def namespace(self):
        return (self.body.get("metadata") or {}).get("namespace", "") if self.namespaced else ""

    @property
    def where(self):
        return f"{self.source}, document {self.document} (line {self.line})"

    @property
    def label(self):
        return f"{self.kind}/{self.name}"

    def path(self, name=True):
        group_version = self.api_version
        prefix = f"/api/{group_version}" if "/" not in group_version else f"/apis/{group_version}"
        scope = f"/namespaces/{self.namespace}" if self.namespaced else ""
        tail = f"/{self.name}" if name else ""
        return f"{prefix}{scope}/{self.plural}{tail}"

    def summary(self):
        return {"kind": self.kind, "apiVersion": self.api_version, "name": self.name, "namespace": self.namespace, "source": self.source, "document": self.document, "line": self.line}


# ---- parsing ---------------------------------------------------------------------------

def parse_documents(sources, problems=None):
    """[(source name, YAML text)] → [ManifestObject]. A YAML error names the source,
    document, line and column; a document that is not an object with apiVersion, kind
    and metadata.name is refused with its place. Every problem is reported at once.

    With a `problems` list, problems are appended to it and the readable objects are
    returned, so that a caller can also validate those against the cluster and report
    everything in one go (a YAML error in one file must not hide the others' problems)."""
    collect = problems is not None
    objects, problems = [], (problems if collect else [])
    for source, text in sources:
        for document, line, data, error in _documents(text):
            where = f"{source}, document {document} (line {line})"
            if error:
                problems.append(f"{source}, document {document}: {error}")
                break  # after a syntax error the rest of that stream cannot be read reliably
            if data is None:
                continue
            if isinstance(data, dict) and data.get("kind") == "List" and isinstance(data.get("items"), list):
                items = data["items"]
            else:
                items = [data]
            for item in items:
                problem = _shape_problem(item)
                if problem:
                    problems.append(f"{where}: {problem}")
                else:
                    objects.append(ManifestObject(source=source, document=document, line=line, body=item))
    if not objects and not problems:
        problems.append("no object found: paste or upload at least one document with apiVersion, kind and metadata.name.")
    seen = {}
    for obj in objects:
        key = (obj.api_version.split("/")[0] if "/" in obj.api_version else "", obj.kind, (obj.body.get("metadata") or {}).get("namespace", ""), obj.name)
        if key in seen:
            problems.append(f"{obj.where}: {obj.label} is also defined at {seen[key].where}; keep one of them.")
        else:
            seen[key] = obj
    if problems and not collect:
        raise ManifestInvalid(problems)
    return objects


def _documents(text):
    """Yield (document number, first line, data, error text) for each document of a stream."""
    document = 0
    try:
        loader = safe_yaml.loader_for(text)
    except yaml.YAMLError as exc:
        yield 1, 1, None, f"YAML error at {safe_yaml.describe(exc)}."
        return
    try:
        while True:
            document += 1
            try:
                if not loader.check_node():
                    return
                node = loader.get_node()
                data = loader.construct_document(node)
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
                place = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
                problem = getattr(exc, "problem", None) or str(exc)
                context = getattr(exc, "context", None)
                yield document, (mark.line + 1 if mark else 1), None, f"YAML error at {place}{problem}{f' ({context})' if context else ''}."
                return
            yield document, node.start_mark.line + 1 if node is not None else 1, data, None
    finally:
        loader.dispose()


def _shape_problem(data):
    if not isinstance(data, dict):
        return f"expected a mapping (an object with apiVersion, kind, metadata), found {type(data).__name__}."
    missing = [key for key in ("apiVersion", "kind") if not isinstance(data.get(key), str) or not data.get(key)]
    metadata = data.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str) or not metadata.get("name"):
        missing.append("metadata.name")
    if missing:
        return f"missing {', '.join(missing)}."
    return ""


# ---- discovery ------------------------------------------------------------------------

def raw_request(api_client, method, path, query=None, body=None, content_type="application/json", warnings=None):
    """One request through the official client (its auth, TLS and timeouts); the JSON answer.
    Raises the client's ApiException on an HTTP error (wrap calls in `api_errors`).
    The API's warnings (deprecations) are appended to the `warnings` list when one is given."""
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = content_type
    params = api_client.param_serialize(method=method, resource_path=path, query_params=list((query or {}).items()), header_params=headers, body=body, auth_settings=["BearerToken"])
    response = api_client.call_api(*params)
    if warnings is not None:
        warnings.extend(text for text in response_warnings(response) if text not in warnings)
    response.read()
    result = api_client.response_deserialize(response, {"2XX": "object"})
    data = result.data
    if isinstance(data, (bytes, str)):
        data = json.loads(data or "null")
    return data, response.status


class Discovery:
    """What one cluster serves, read lazily and kept for the job: `requests` counts calls."""

    def __init__(self, api_client):
        self.api_client = api_client
        self.requests = 0
        self._group_versions = None
        self._resources = {}

    def _get(self, path):
        self.requests += 1
        with api_errors(f"the Kubernetes API at {describe(self.api_client)}"):
            data, _ = raw_request(self.api_client, "GET", path)
        return data or {}

    def group_versions(self):
        """{"v1", "apps/v1", ...}: every group/version the server serves."""
        if self._group_versions is None:
            served = set(self._get("/api").get("versions") or ["v1"])
            for group in self._get("/apis").get("groups") or []:
                for version in group.get("versions") or []:
                    served.add(version.get("groupVersion"))
            self._group_versions = served
        return self._group_versions

    def resources(self, group_version):
        """{kind: {"plural", "namespaced", "verbs"}} of a served group/version."""
        if group_version not in self._resources:
            path = f"/api/{group_version}" if "/" not in group_version else f"/apis/{group_version}"
            kinds = {}
            for resource in self._get(path).get("resources") or []:
                if "/" in resource.get("name", ""):
                    continue  # subresources (deployments/scale...)
                kinds[resource["kind"]] = {"plural": resource["name"], "namespaced": bool(resource.get("namespaced")), "verbs": resource.get("verbs") or []}
            self._resources[group_version] = kinds
        return self._resources[group_version]

    def served_versions_of(self, kind):
        """Group/versions already read that serve this kind (for 'did you mean')."""
        return sorted(gv for gv, kinds in self._resources.items() if kind in kinds)


def _known_replacement(api_version, kind):
    """(new apiVersion or None, Kubernetes version that removed the old one) from the tables, or None."""
    return REMOVED_VERSIONS.get((api_version, kind)) or REMOVED_GROUP_VERSIONS.get(api_version)


def _served_elsewhere_in_group(api_version, kind, discovery):
    """Other served versions of the same API group that serve this kind, the newest-looking first.

    Asks the cluster (one resource list per sibling version, cached for the job), so the
    advice is what *this* cluster serves, not what a table remembers."""
    group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
    siblings = [gv for gv in discovery.group_versions() if gv != api_version and (gv.rsplit("/", 1)[0] if "/" in gv else "") == group]
    serving = [gv for gv in siblings if kind in discovery.resources(gv)]
    return sorted(serving, key=_version_rank)


def _version_rank(group_version):
    """Kubernetes version priority: GA before beta before alpha, higher numbers first."""
    version = group_version.rsplit("/", 1)[-1]
    found = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not found:
        return (3, 0, 0, version)
    stage = {"": 0, "beta": 1, "alpha": 2}[found.group(2) or ""]
    return (stage, -int(found.group(1)), -int(found.group(3) or 0), version)


def _replacement_advice(obj, discovery):
    """" Use apiVersion: X instead ..." for a kind this apiVersion does not serve, or ""."""
    api_version, kind = obj.api_version, obj.kind
    known = _known_replacement(api_version, kind)
    removed = f" (removed in Kubernetes {known[1]})" if known else ""
    served = _served_elsewhere_in_group(api_version, kind, discovery)
    if served:
        return f"{removed}. Use apiVersion: {served[0]} instead (check the fields that changed between the versions)."
    if known:
        new_version, removed_in = known
        if new_version is None:
            return f" ({api_version} {kind} was removed in Kubernetes {removed_in} and has no replacement); remove this object."
        return f"{removed}. Use apiVersion: {new_version} instead (check the fields that changed between the versions)."
    return ""


def unserved_message(obj, discovery):
    """Why the cluster does not serve this kind/apiVersion, and what to use instead."""
    base = f"{obj.where}: {obj.kind} {obj.name!r} uses apiVersion {obj.api_version}, which this cluster does not serve"
    return base + (_replacement_advice(obj, discovery) or ".")


def validate(objects, discovery, namespace):
    """Resolve each object's resource and put namespaced ones in `namespace`.

    Raises ManifestInvalid listing every problem; on success the objects carry their
    plural and scope and are sorted in apply order."""
    problems = []
    served = discovery.group_versions()
    for obj in objects:
        if obj.api_version not in served:
            problems.append(unserved_message(obj, discovery))
            continue
        resource = discovery.resources(obj.api_version).get(obj.kind)
        if resource is None:
            problems.append(_unknown_kind_message(obj, discovery))
            continue
        obj.plural, obj.namespaced = resource["plural"], resource["namespaced"]
        if "patch" not in resource["verbs"]:
            problems.append(f"{obj.where}: {obj.kind} cannot be applied (the API does not allow patching {resource['plural']}).")
            continue
        metadata = obj.body.setdefault("metadata", {})
        if obj.namespaced:
            declared = metadata.get("namespace")
            if declared and declared != namespace:
                problems.append(f"{obj.where}: {obj.label} says metadata.namespace {declared!r} but the chosen namespace is {namespace!r}. Remove metadata.namespace or choose {declared!r}.")
                continue
            metadata["namespace"] = namespace
        else:
            metadata.pop("namespace", None)
    if problems:
        raise ManifestInvalid(problems)
    rank = {kind: index for index, kind in enumerate(APPLY_ORDER)}
    objects.sort(key=lambda o: rank.get(o.kind, len(APPLY_ORDER)))
    return objects


def _unknown_kind_message(obj, discovery):
    base = f"{obj.where}: this cluster does not serve kind {obj.kind} in {obj.api_version}"
    # The group/version is still served for other kinds (storage.k8s.io/v1beta1 kept
    # CSIStorageCapacity after StorageClass moved to v1): name the version serving this kind.
    advice = _replacement_advice(obj, discovery)
    if advice:
        return base + advice
    elsewhere = [gv for gv in discovery.served_versions_of(obj.kind) if gv != obj.api_version]
    if elsewhere:
        return f"{base}; it serves {obj.kind} in {', '.join(elsewhere)}."
    known = sorted(discovery.resources(obj.api_version))
    close = difflib.get_close_matches(obj.kind, known, n=1)
    if close:
        return f"{base}. Did you mean kind: {close[0]}?"
    return f"{base} (a custom resource whose definition is not installed, or a typo)."


def load_and_validate(api_client, sources, namespace, discovery=None):
    """Parse and validate; returns (objects, discovery). Nothing is written."""
    problems = []
    objects = parse_documents(sources, problems)
    discovery = discovery or Discovery(api_client)
    return validate_all(objects, discovery, namespace, problems), discovery


def validate_all(objects, discovery, namespace, problems):
    """`validate` the readable objects, then raise every problem, parsing's and the cluster's, at once."""
    problems = list(problems)
    if objects:
        try:
            objects = validate(objects, discovery, namespace)
        except ManifestInvalid as exc:
            problems += exc.problems
    if problems:
        raise ManifestInvalid(problems)
    return objects


def secret_values(objects):
    """Every value of the Secrets in a manifest set (as written, base64 and decoded)."""
    values = []
    for obj in objects:
        if obj.kind != "Secret":
            continue
        for key in ("data", "stringData"):
            for value in (obj.body.get(key) or {}).values():
                if not isinstance(value, str) or not value:
                    continue
                values.append(value)
                if key == "data":
                    try:
                        values.append(base64.b64decode(value).decode())
                    except (ValueError, UnicodeDecodeError):
                        pass
                else:
                    values.append(base64.b64encode(value.encode()).decode())
    return [v for v in values if len(v) >= 4]


# ---- apply and diff --------------------------------------------------------------------

def apply_object(api_client, obj, dry_run=False, force=False, warnings=None):
    """Server-side apply of one object; (the object the server returns, created?).
    The API's warnings about it (a deprecated apiVersion...) go into `warnings`."""
    query = {"fieldManager": FIELD_MANAGER}
    if force:
        query["force"] = "true"
    if dry_run:
        query["dryRun"] = "All"
    with api_errors(f"{obj.label} on {describe(api_client)}"):
        data, status = raw_request(api_client, "PATCH", obj.path(), query=query, body=json.dumps(obj.body), content_type="application/apply-patch+yaml", warnings=warnings)
    return data, status == 201


def read_live(api_client, obj):
    """The live object, or None when it does not exist yet."""
    try:
        with api_errors(f"{obj.label} on {describe(api_client)}"):
            data, _ = raw_request(api_client, "GET", obj.path())
        return data
    except NotFound:
        return None


@dataclass
class ObjectDiff:
    obj: ManifestObject
    state: str  # created, unchanged, changed
    diff: str = ""
    changed_fields: list = field(default_factory=list)
    warnings: list = field(default_factory=list)  # what the API server warned about (deprecations)

    def as_dict(self):
        return {**self.obj.summary(), "state": self.state, "diff": self.diff, "changed_fields": self.changed_fields, "warnings": self.warnings}


def comparable(data, kind=None, counterpart=None):
    """An object as people compare it: no server bookkeeping, no status, Secret values hidden."""
    if data is None:
        return None
    data = json.loads(json.dumps(data))
    data.pop("status", None)
    metadata = data.get("metadata") or {}
    for key in SERVER_METADATA:
        metadata.pop(key, None)
    if (kind or data.get("kind")) == "Secret":
        annotations = metadata.get("annotations") or {}
        annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
        other = (counterpart or {}).get("data") or {}
        for key in ("data", "stringData"):
            values = data.get(key) or {}
            for name, value in list(values.items()):
                size = len(base64.b64decode(value)) if key == "data" else len(str(value))
                same = other.get(name) == value if counterpart is not None else True
                values[name] = f"(hidden, {size} bytes{'' if same else ', changed'})"
    return data


def _changed_paths(old, new, prefix=""):
    if isinstance(old, dict) and isinstance(new, dict):
        paths = []
        for key in sorted(set(old) | set(new), key=str):
            if old.get(key) != new.get(key):
                paths.extend(_changed_paths(old.get(key), new.get(key), f"{prefix}.{key}" if prefix else str(key)))
        return paths
    return [prefix or "."] if old != new else []


def diff_object(api_client, obj):
    """Compare the live object with the result of a server-side dry-run apply."""
    live = read_live(api_client, obj)
    warnings = []
    planned, _ = apply_object(api_client, obj, dry_run=True, warnings=warnings)
    after = comparable(planned, obj.kind, counterpart=live)
    label = f"{obj.kind}/{obj.namespace + '/' if obj.namespace else ''}{obj.name}"
    new_text = yaml.safe_dump(after, sort_keys=True, default_flow_style=False)
    if live is None:
        diff = "".join(difflib.unified_diff([], new_text.splitlines(True), "/dev/null", f"applied/{label}"))
        return ObjectDiff(obj, "created", diff, [], warnings)
    before = comparable(live, obj.kind, counterpart=live)
    if before == after:
        return ObjectDiff(obj, "unchanged", warnings=warnings)
    old_text = yaml.safe_dump(before, sort_keys=True, default_flow_style=False)
    diff = "".join(difflib.unified_diff(old_text.splitlines(True), new_text.splitlines(True), f"live/{label}", f"applied/{label}"))
    return ObjectDiff(obj, "changed", diff, _changed_paths(before, after), warnings)


def diff_objects(api_client, objects, ctx=None):
    results = []
    for index, obj in enumerate(objects, start=1):
        result = diff_object(api_client, obj)
        if ctx is not None:
            fields = f" ({', '.join(result.changed_fields[:8])}{'…' if len(result.changed_fields) > 8 else ''})" if result.changed_fields else ""
            writer = ctx.changed if result.state != "unchanged" else ctx.ok
            writer(f"{obj.label}: {result.state}{fields}", host=obj.namespace or "(cluster)", task="diff")
            for text in result.warnings:
                ctx.line(f"Warning: {text}", host=obj.namespace or "(cluster)", task="diff")
            ctx.progress(index, len(objects))
        results.append(result)
    return results


def preflight(api_client, objects, force=False):
    """Server-side dry run of every object before the first write, so that what only the API
    server checks (invalid fields, field-manager conflicts, RBAC, quota, admission) refuses
    the whole set instead of leaving it half applied. Raises ManifestInvalid."""
    problems = []
    created_namespaces = {obj.name for obj in objects if obj.kind == "Namespace" and obj.api_version == "v1"}
    for obj in objects:
        try:
            apply_object(api_client, obj, dry_run=True, force=force)
        except NotFound:
            if obj.namespace in created_namespaces:
                continue  # its namespace comes earlier in this very set
            problems.append(f"{obj.where}: {obj.label}: namespace {obj.namespace!r} does not exist on the cluster; create it first or add a Namespace document.")
        except DriverError as exc:
            problems.append(f"{obj.where}: {exc}")
    if problems:
        raise ManifestInvalid(problems)


def apply_objects(api_client, objects, ctx=None, force=False):
    """Apply each object (already validated) in order; [{kind, name, namespace, action}]."""
    applied = []
    for index, obj in enumerate(objects, start=1):
        warnings = []
        data, created = apply_object(api_client, obj, force=force, warnings=warnings)
        action = "created" if created else "configured"
        row = {**obj.summary(), "action": action, "resourceVersion": ((data or {}).get("metadata") or {}).get("resourceVersion", ""), "warnings": warnings}
        applied.append(row)
        if ctx is not None:
            ctx.changed(f"{obj.label} {action}", host=obj.namespace or "(cluster)", task="apply")
            for text in warnings:
                ctx.line(f"Warning: {text}", host=obj.namespace or "(cluster)", task="apply")
            ctx.progress(index, len(objects))
    return applied
