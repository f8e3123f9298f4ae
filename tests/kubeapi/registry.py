"""Create/read/update/patch/delete with API-server semantics, independent of
HTTP: optimistic concurrency on resourceVersion, generation bumps, status
subresource isolation, managedFields, finalizers and graceful deletion,
propagation policies, dry-run, and the namespace bootstrap (default
ServiceAccount and ``kube-root-ca.crt``).

The REST layer calls it for client requests and the controllers call it for
their own writes, so both go through the same admission and bookkeeping.
Objects here are always in their storage version.
"""

from __future__ import annotations

from . import admission
from .apply import record_update, refresh_managed, server_side_apply
from .decoding import check_apply_body
from .errors import ApiError, already_exists, bad_request, conflict, field_error, invalid, not_found
from .events import EventRecorder
from .meta import clone, dig, new_uid, random_suffix, rfc3339, now
from .patches import json_patch, merge_patch, strategic_merge
from .resources import BY_KEY, from_version, to_version
from .selectors import fields_match, labels_match
from .strategies import apply_defaults, initial_status, spec_of
from .validation import validate

SYSTEM_META = ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp",
               "deletionGracePeriodSeconds", "generation", "managedFields", "selfLink")
RETURNS_OBJECT = {"/pods", "/namespaces", "/services"}
PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
    "application/apply-patch+json": "apply",
}


def _invalid_options(field, message, kind="Required"):
    cause = field_error(kind, field, message)
    return ApiError(422, "Invalid", f'PatchOptions.meta.k8s.io "" is invalid: {field}: {cause["message"]}',
                    {"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [cause]})


class Registry:
    def __init__(self, store, root_ca_pem=""):
        self.store = store
        self.root_ca_pem = root_ca_pem
        self.events = EventRecorder(self)

    # --- reads ---------------------------------------------------------------------------
    def get(self, rtype, ns, name):
        obj = self.store.get(rtype.key, ns if rtype.namespaced else "", name)
        if obj is None:
            raise not_found(rtype.plural, rtype.group, name)
        return obj

    def list(self, rtype, ns, label_reqs=(), field_reqs=()):
        with self.store.lock:
            items = [o for o in self.store.items(rtype.key, ns if rtype.namespaced else None)
                     if labels_match(label_reqs, o["metadata"].get("labels"))
                     and fields_match(field_reqs, o)]
            return [clone(o) for o in items], self.store.current_rv

    # --- create ----------------------------------------------------------------------------
    def _scope(self, rtype, obj, ns):
        meta = obj.get("metadata")
        if not isinstance(meta, dict):
            meta = obj["metadata"] = {}
        if rtype.namespaced:
            if meta.get("namespace") and ns and meta["namespace"] != ns:
                raise bad_request("the namespace of the provided object does not match the namespace sent "
                                  "on the request")
            meta["namespace"] = ns or meta.get("namespace") or "default"
        else:
            meta.pop("namespace", None)
        return meta

    def create(self, rtype, ns, body, manager, dry_run=False, api_version=None, managed=None):
        if not isinstance(body, dict):
            raise bad_request("the body of the request was in an unknown format")
        obj = clone(body)
        meta = self._scope(rtype, obj, ns)
        for key in SYSTEM_META:
            meta.pop(key, None)
        generate = not meta.get("name") and meta.get("generateName")
        if generate:
            meta["name"] = meta["generateName"] + random_suffix()
        obj["apiVersion"], obj["kind"] = rtype.api_version(), rtype.kind
        apply_defaults(rtype, obj)
        if rtype.has_status:
            obj["status"] = initial_status(rtype, obj)
        validate(rtype, obj)
        ns = meta.get("namespace", "")
        with self.store.lock:
            while self.store.peek(rtype.key, ns, meta["name"]) is not None:
                if not generate:
                    raise already_exists(rtype.plural, rtype.group, meta["name"])
                meta["name"] = meta["generateName"] + random_suffix()
            admission.check_namespace(self.store, rtype, ns, meta["name"])
            if rtype.key == "/pods":
                admission.check_service_account(self.store, obj)
                admission.check_pod_security(self.store, obj)
                admission.apply_limit_ranges(self.store, obj)
                obj["status"] = initial_status(rtype, obj)
            admission.check_quota(self.store, rtype, obj)
            if rtype.key == "/services":
                self._allocate(obj)
            meta["uid"] = new_uid()
            meta["creationTimestamp"] = rfc3339()
            if rtype.generation:
                meta["generation"] = 1
            if managed is not None:
                meta["managedFields"] = managed
                refresh_managed(obj, rtype.has_status)
            else:
                record_update(None, obj, manager, api_version or rtype.api_version(), "", rtype.has_status)
            if dry_run:
                return obj
            created = self.store.put(rtype.key, obj)
            if rtype.key == "/namespaces":
                self._bootstrap_namespace(created["metadata"]["name"])
            return created

    def _allocate(self, svc):
        """ClusterIP from 10.96.0.0/12 and NodePorts from 30000-32767, as the allocators do."""
        spec = svc["spec"]
        services = self.store.items("/services")
        if spec.get("type") != "ExternalName" and spec.get("clusterIP") in (None, ""):
            used = {dig(o, "spec", "clusterIP") for o in services}
            n = 10
            while f"10.96.{n // 250}.{n % 250 + 1}" in used:
                n += 1
            spec["clusterIP"] = f"10.96.{n // 250}.{n % 250 + 1}"
        if spec.get("clusterIP") and spec.get("type") != "ExternalName":
            spec["clusterIPs"] = [spec["clusterIP"]]
        if spec.get("type") in ("NodePort", "LoadBalancer"):
            used = {p.get("nodePort") for o in services for p in dig(o, "spec", "ports", default=[]) or []}
            port = 30000 + (len(used) * 7919) % 2768
            for p in spec.get("ports") or []:
                if not p.get("nodePort"):
                    while port in used:
                        port = 30000 + (port - 30000 + 1) % 2768
                    p["nodePort"] = port
                    used.add(port)

    def create_internal(self, key, obj, manager):
        rtype = BY_KEY[key]
        return self.create(rtype, obj["metadata"].get("namespace", ""), obj, manager)

    def _bootstrap_namespace(self, ns):
        sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": ns}}
        self.create(BY_KEY["/serviceaccounts"], ns, sa, "kube-controller-manager")
        if self.root_ca_pem:
            cm = {"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": {"name": "kube-root-ca.crt", "namespace": ns,
                               "annotations": {"kubernetes.io/description": (
                                   "Contains a CA bundle that can be used to verify the kube-apiserver when "
                                   "using internal endpoints such as the internal service IP or "
                                   "kubernetes.default.svc. No other usage is guaranteed across distributions "
                                   "of Kubernetes clusters.")}},
                  "data": {"ca.crt": self.root_ca_pem}}
            self.create(BY_KEY["/configmaps"], ns, cm, "kube-controller-manager")

    # --- update ------------------------------------------------------------------------------
    def _prepare_update(self, rtype, old, body, subresource, managed=None):
        if not isinstance(body, dict):
            raise bad_request("the body of the request was in an unknown format")
        meta = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
        name = old["metadata"]["name"]
        if meta.get("name") and meta["name"] != name:
            raise bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL ({name})")
        if rtype.namespaced and meta.get("namespace") and meta["namespace"] != old["metadata"]["namespace"]:
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
        rv = meta.get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise conflict(rtype.plural, rtype.group, name)
        if subresource == "status":
            new = clone(old)
            new["status"] = clone(body.get("status"))
            if new["status"] is None:
                new.pop("status")
        else:
            new = clone(body)
            new_meta = new.setdefault("metadata", {})
            if not isinstance(new_meta, dict):
                new_meta = new["metadata"] = {}
            for key in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                        "generation", "namespace", "name", "managedFields"):
                if key in old["metadata"]:
                    new_meta[key] = old["metadata"][key]
                else:
                    new_meta.pop(key, None)
            new_meta.pop("selfLink", None)
            if rtype.has_status:
                if "status" in old:
                    new["status"] = clone(old["status"])
                else:
                    new.pop("status", None)
            new["apiVersion"], new["kind"] = rtype.api_version(), rtype.kind
            if rtype.key == "/services":
                _carry_allocations(old, new)
            apply_defaults(rtype, new)
            validate(rtype, new, old)
        if managed is not None:
            new["metadata"]["managedFields"] = managed
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        return new

    def _commit_update(self, rtype, old, new, manager, api_version, subresource, dry_run, managed_done=False):
        if rtype.generation and spec_of(new) != spec_of(old):
            new["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
        if managed_done:
            refresh_managed(new, rtype.has_status)
        else:
            record_update(old, new, manager, api_version or rtype.api_version(), subresource, rtype.has_status)
        if new == old:
            return clone(old)
        meta = new["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            if dry_run:
                return new
            if rtype.key == "/pods" and not meta.get("deletionGracePeriodSeconds") == 0 \
                    and dig(new, "spec", "nodeName"):
                return self.store.put(rtype.key, new)
            self.store.put(rtype.key, new)
            return self.store.remove(rtype.key, meta.get("namespace", ""), meta["name"])
        if dry_run:
            return new
        return self.store.put(rtype.key, new)

    def update(self, rtype, ns, name, body, manager, dry_run=False, subresource="", api_version=None):
        with self.store.lock:
            old = self.get(rtype, ns, name)
            new = self._prepare_update(rtype, old, body, subresource)
            return self._commit_update(rtype, old, new, manager, api_version, subresource, dry_run)

    def update_internal(self, obj, manager, subresource=""):
        rtype = BY_KEY[_key_of(obj)]
        body = clone(obj)
        body["metadata"].pop("resourceVersion", None)
        return self.update(rtype, obj["metadata"].get("namespace", ""), obj["metadata"]["name"], body,
                           manager, subresource=subresource)

    # --- patch -------------------------------------------------------------------------------
    def patch(self, rtype, ns, name, content_type, patch, manager, force=None, dry_run=False,
              subresource="", version=None):
        ptype = PATCH_TYPES.get((content_type or "").split(";")[0].strip())
        if ptype is None:
            from .errors import unsupported_media_type
            raise unsupported_media_type()
        version = version or rtype.storage_version
        api_version = rtype.api_version(version)
        if ptype == "apply":
            if not manager:
                raise _invalid_options("fieldManager", "is required for apply patch")
        elif force is not None:
            raise _invalid_options("force", "may not be specified for non-apply patch", "Forbidden")
        with self.store.lock:
            old = self.store.get(rtype.key, ns if rtype.namespaced else "", name)
            if ptype == "apply":
                applied = self._applied_config(rtype, patch, name, version, api_version)
                check_apply_body(rtype, applied, ns if rtype.namespaced else "", name, api_version)
                wanted_rv = applied["metadata"].pop("resourceVersion", None)
                wanted_uid = applied["metadata"].get("uid")
                for key in SYSTEM_META:
                    applied["metadata"].pop(key, None)
                if old is not None and ((wanted_rv and wanted_rv != old["metadata"]["resourceVersion"])
                                        or (wanted_uid and wanted_uid != old["metadata"]["uid"])):
                    raise conflict(rtype.plural, rtype.group, name)
                if old is None:
                    if subresource:
                        raise not_found(rtype.plural, rtype.group, name)
                    merged = server_side_apply(rtype, None, applied, manager, api_version, force)
                    return self.create(rtype, ns, merged, manager, dry_run, api_version,
                                       managed=merged["metadata"].get("managedFields", []))
                merged = server_side_apply(rtype, old, applied, manager, api_version, force, subresource)
                merged["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
                new = self._prepare_update(rtype, old, merged, subresource,
                                           managed=merged["metadata"].get("managedFields", []))
                return self._commit_update(rtype, old, new, manager, api_version, subresource, dry_run,
                                           managed_done=True)
            if old is None:
                raise not_found(rtype.plural, rtype.group, name)
            current = to_version(rtype, old, version)
            if ptype == "merge":
                patched = merge_patch(current, patch)
            elif ptype == "strategic":
                patched = strategic_merge(current, patch)
            else:
                patched = json_patch(current, patch)
            if not isinstance(patched, dict):
                raise bad_request("the patched object is not a JSON object")
            new = self._prepare_update(rtype, old, from_version(rtype, patched, version), subresource)
            return self._commit_update(rtype, old, new, manager, api_version, subresource, dry_run)

    def _applied_config(self, rtype, body, name, version, api_version):
        if not isinstance(body, dict):
            raise bad_request("the body of the request was in an unknown format")
        if body.get("apiVersion") != api_version:
            raise bad_request(f"the API version in the data ({body.get('apiVersion')}) does not match the "
                              f"expected API version ({api_version})")
        if body.get("kind") != rtype.kind:
            raise bad_request(f"the kind in the data ({body.get('kind')}) does not match the expected kind "
                              f"({rtype.kind})")
        meta = body.get("metadata") or {}
        if meta.get("name") and meta["name"] != name:
            raise bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL ({name})")
        applied = from_version(rtype, body, version)
        applied["metadata"] = dict(meta, name=name)
        return applied

    # --- delete --------------------------------------------------------------------------------
    def delete(self, rtype, ns, name, propagation=None, grace=None, dry_run=False, preconditions=None):
        with self.store.lock:
            old = self.get(rtype, ns, name)
            meta = old["metadata"]
            pre = preconditions or {}
            if pre.get("uid") and pre["uid"] != meta["uid"]:
                raise conflict(rtype.plural, rtype.group, name,
                               f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {meta['uid']}")
            if pre.get("resourceVersion") and pre["resourceVersion"] != meta["resourceVersion"]:
                raise conflict(rtype.plural, rtype.group, name,
                               f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, "
                               f"ResourceVersion in object meta: {meta['resourceVersion']}")
            if propagation not in (None, "Orphan", "Background", "Foreground"):
                raise invalid("DeleteOptions", "meta.k8s.io", "", [field_error(
                    "NotSupported", "propagationPolicy", '"Background", "Foreground", "Orphan", nil', propagation)])
            if rtype.key == "/namespaces":
                admission.check_namespace_delete(name)
            if dry_run:
                return self._deleted_response(rtype, old)
            if meta.get("deletionTimestamp"):
                if rtype.key == "/pods" and grace == 0:
                    return self.store.remove(rtype.key, ns, name)
                return old
            if rtype.key == "/namespaces":
                meta["deletionTimestamp"] = rfc3339()
                meta["deletionGracePeriodSeconds"] = 0
                old.setdefault("status", {})["phase"] = "Terminating"
                return self.store.put(rtype.key, old)
            if rtype.key == "/pods" and dig(old, "spec", "nodeName") and grace != 0:
                grace = dig(old, "spec", "terminationGracePeriodSeconds", default=30) if grace is None else grace
                meta["deletionTimestamp"] = rfc3339(now() + grace)
                meta["deletionGracePeriodSeconds"] = grace
                return self.store.put(rtype.key, old)
            if propagation == "Orphan":
                self._orphan_dependents(meta["uid"])
            if propagation == "Foreground":
                finalizers = meta.setdefault("finalizers", [])
                if "foregroundDeletion" not in finalizers:
                    finalizers.append("foregroundDeletion")
            if meta.get("finalizers"):
                meta["deletionTimestamp"] = rfc3339()
                meta["deletionGracePeriodSeconds"] = 0
                return self.store.put(rtype.key, old)
            gone = self.store.remove(rtype.key, ns if rtype.namespaced else "", name)
            return self._deleted_response(rtype, gone)

    def _deleted_response(self, rtype, obj):
        if rtype.key in RETURNS_OBJECT:
            return obj
        details = {"name": obj["metadata"]["name"], "kind": rtype.plural, "uid": obj["metadata"]["uid"]}
        if rtype.group:
            details["group"] = rtype.group
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}

    def _orphan_dependents(self, uid):
        for key in list(BY_KEY):
            for dep in self.store.items(key):
                refs = dep["metadata"].get("ownerReferences") or []
                if any(r.get("uid") == uid for r in refs):
                    dep = clone(dep)
                    dep["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != uid]
                    if not dep["metadata"]["ownerReferences"]:
                        dep["metadata"].pop("ownerReferences")
                    self.store.put(key, dep)

    def write_internal(self, old, new, manager, subresource="", bump_generation=False):
        """A controller's write: no validation, no optimistic lock (callers hold the store lock)."""
        rtype = BY_KEY[_key_of(new)]
        if bump_generation and rtype.generation and spec_of(new) != spec_of(old):
            new["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        record_update(old, new, manager, rtype.api_version(), subresource, rtype.has_status)
        if new == old:
            return old
        return self.store.put(rtype.key, new)

    def remove_now(self, key, ns, name):
        """Final removal (kubelet done, finalizers done, namespace cleanup)."""
        return self.store.remove(key, ns, name)


def _carry_allocations(old, new):
    """Service updates keep allocated IPs and node ports the client left out."""
    ospec, nspec = old.get("spec") or {}, new.setdefault("spec", {})
    if not nspec.get("clusterIP") and ospec.get("clusterIP"):
        nspec["clusterIP"] = ospec["clusterIP"]
        nspec["clusterIPs"] = list(ospec.get("clusterIPs") or [ospec["clusterIP"]])
    old_ports = {(p.get("port"), p.get("protocol", "TCP")): p for p in ospec.get("ports") or []}
    for p in nspec.get("ports") or []:
        prev = old_ports.get((p.get("port"), p.get("protocol", "TCP")))
        if prev and prev.get("nodePort") and not p.get("nodePort") and nspec.get("type") in ("NodePort", "LoadBalancer"):
            p["nodePort"] = prev["nodePort"]


def _key_of(obj):
    group = obj["apiVersion"].rpartition("/")[0]
    for key, rtype in BY_KEY.items():
        if rtype.group == group and rtype.kind == obj["kind"]:
            return key
    raise KeyError(obj["kind"])
