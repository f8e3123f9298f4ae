"""Discovery documents: ``/version``, ``/api``, ``/api/v1``, ``/apis``,
``/apis/{group}`` and ``/apis/{group}/{version}``, built from the resource
catalogue so that ``DynamicClient`` (and kubectl) find every kind, its scope,
verbs, short names and subresources such as ``deployments/scale``.
"""

from __future__ import annotations

import base64
import hashlib

from .resources import ALL_TYPES, served_versions

K8S_MINOR = "37"


def version_info():
    return {
        "major": "1", "minor": K8S_MINOR, "emulationMajor": "1", "emulationMinor": K8S_MINOR,
        "minCompatibilityMajor": "1", "minCompatibilityMinor": str(int(K8S_MINOR) - 1),
        "gitVersion": f"v1.{K8S_MINOR}.0", "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.25.0",
        "compiler": "gc", "platform": "linux/amd64",
    }


def api_versions(server_address):
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def _group_doc(group, versions):
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}


def api_group_list(legacy=False):
    groups = [_group_doc(g, vs) for g, vs in served_versions(legacy).items() if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(group, legacy=False):
    versions = served_versions(legacy).get(group)
    if not versions or not group:
        return None
    doc = _group_doc(group, versions)
    doc.update(kind="APIGroup", apiVersion="v1")
    return doc


def _hash(text):
    return base64.b64encode(hashlib.sha256(text.encode()).digest()[:8]).decode()


def resource_list(group, version, legacy=False):
    """APIResourceList for one group/version, or None if it is not served."""
    if version not in served_versions(legacy).get(group, []):
        return None
    resources = []
    for t in ALL_TYPES:
        if t.group != group or not t.serves(version, legacy):
            continue
        entry = {"name": t.plural, "singularName": t.singular, "namespaced": t.namespaced,
                 "kind": t.kind, "verbs": list(t.verbs)}
        if t.short_names:
            entry["shortNames"] = list(t.short_names)
        if t.categories:
            entry["categories"] = list(t.categories)
        if t.stored:
            entry["storageVersionHash"] = _hash(f"{t.group}/{t.storage_version}/{t.kind}")
        resources.append(entry)
        for sub in t.subresources:
            s = {"name": f"{t.plural}/{sub.name}", "singularName": "", "namespaced": t.namespaced,
                 "kind": sub.kind, "verbs": list(sub.verbs)}
            if sub.group is not None:
                s["group"], s["version"] = sub.group, sub.version
            resources.append(s)
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}
