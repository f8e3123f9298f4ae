"""Validation that answers 422 ``Invalid`` with the real server's wording.

Covers what clients most often trip over: object names (DNS-1123 subdomain,
DNS-1123 label, DNS-1035 label, path segment), label keys and values, and
the required fields of the workload kinds (selector matching template
labels, containers with name and image, service ports).  Anything deeper
(resource quantities in every field, probes, affinity...) is accepted as is.
"""

from __future__ import annotations

import re

from . import quantity
from .errors import bad_request, field_error, invalid
from .meta import dig

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_QUALIFIED = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")

SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                 "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
                 "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
             "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
             "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
DNS1035_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
               "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
               "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
                   "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
                   "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")
QUALIFIED_MSG = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
                 "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
                 "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")


def name_errors(name, rule, field="metadata.name"):
    if rule == "path":
        if name in (".", "..") or "/" in name or "%" in name:
            return [field_error("Invalid", field, "may not contain '/'" if "/" in name else
                                "may not be '.' or '..'" if name in (".", "..") else "may not contain '%'", name)]
        return []
    limit = {"subdomain": 253, "label": 63, "dns1035": 63}[rule]
    regex = {"subdomain": _SUBDOMAIN, "label": _LABEL, "dns1035": _DNS1035}[rule]
    msg = {"subdomain": SUBDOMAIN_MSG, "label": LABEL_MSG, "dns1035": DNS1035_MSG}[rule]
    errs = []
    if len(name) > limit:
        errs.append(field_error("Invalid", field, f"must be no more than {limit} characters", name))
    if not regex.match(name):
        errs.append(field_error("Invalid", field, msg, name))
    return errs


def _label_errors(labels, field):
    errs = []
    if labels is None:
        return errs
    if not isinstance(labels, dict):
        return [field_error("Invalid", field, "must be a map of strings", str(labels))]
    for key, value in labels.items():
        prefix, _, name = key.rpartition("/")
        if not name or not _QUALIFIED.match(name) or len(name) > 63 or (prefix and not _SUBDOMAIN.match(prefix)):
            errs.append(field_error("Invalid", field, QUALIFIED_MSG, key))
        if not isinstance(value, str) or not _LABEL_VALUE.match(value) or len(value) > 63:
            errs.append(field_error("Invalid", field, LABEL_VALUE_MSG, value))
    return errs


def _containers(spec, path, errs, kind_of=("Pod",)):
    containers = (spec or {}).get("containers")
    if not containers:
        errs.append(field_error("Required", f"{path}.containers", ""))
        return
    seen = set()
    for i, c in enumerate(containers):
        cp = f"{path}.containers[{i}]"
        if not c.get("name"):
            errs.append(field_error("Required", f"{cp}.name", ""))
        else:
            if c["name"] in seen:
                errs.append(field_error("Duplicate", f"{cp}.name", "", c["name"]))
            seen.add(c["name"])
            errs.extend(name_errors(c["name"], "label", f"{cp}.name"))
        if not c.get("image"):
            errs.append(field_error("Required", f"{cp}.image", ""))
        for kind in ("requests", "limits"):
            for res, value in ((c.get("resources") or {}).get(kind) or {}).items():
                try:
                    quantity.parse(value)
                except ValueError as err:
                    raise bad_request(f"{kind_of[0]} in version \"v1\" cannot be handled as a {kind_of[0]}: "
                                      f"{err}") from None
        for j, port in enumerate(c.get("ports") or []):
            p = port.get("containerPort")
            if not isinstance(p, int) or not 0 < p < 65536:
                errs.append(field_error("Invalid", f"{cp}.ports[{j}].containerPort",
                                        "must be between 1 and 65535, inclusive", p))


def validate(rtype, obj, old=None):
    """Raise 422 Invalid if ``obj`` breaks the rules checked here."""
    meta = obj.get("metadata") or {}
    name = meta.get("name") or ""
    errs = []
    if not name:
        errs.append(field_error("Required", "metadata.name", "name or generateName is required"))
    else:
        errs.extend(name_errors(name, rtype.name_rule))
    errs.extend(_label_errors(meta.get("labels"), "metadata.labels"))
    ann = meta.get("annotations")
    if ann is not None and (not isinstance(ann, dict) or not all(isinstance(v, str) for v in ann.values())):
        errs.append(field_error("Invalid", "metadata.annotations", "must be a map of strings", str(ann)))
    checker = _KIND_CHECKS.get(rtype.kind)
    if checker:
        checker(obj, old, errs)
    if errs:
        raise invalid(rtype.kind, rtype.group, name, errs)


def _check_workload(obj, old, errs):
    spec = obj.get("spec") or {}
    sel = spec.get("selector")
    if not sel or not (sel.get("matchLabels") or sel.get("matchExpressions")):
        errs.append(field_error("Required", "spec.selector", ""))
        if sel is not None:
            errs.append(field_error("Invalid", "spec.selector", "empty selector is invalid for deployment",
                                    None, value_given=False))
    else:
        from .selectors import labels_match, selector_from_label_selector
        labels = dig(spec, "template", "metadata", "labels", default={})
        if not labels_match(selector_from_label_selector(sel), labels):
            errs.append(field_error("Invalid", "spec.template.metadata.labels",
                                    "`selector` does not match template `labels`", labels))
        if old is not None and dig(old, "spec", "selector") != sel:
            errs.append(field_error("Invalid", "spec.selector", "field is immutable", sel))
    replicas = spec.get("replicas")
    if replicas is not None and (not isinstance(replicas, int) or replicas < 0):
        errs.append(field_error("Invalid", "spec.replicas", "must be greater than or equal to 0", replicas))
    _containers(dig(spec, "template", "spec", default={}), "spec.template.spec", errs, (obj.get("kind"),))
    errs.extend(_label_errors(dig(spec, "template", "metadata", "labels"), "spec.template.labels"))


def _check_pod(obj, old, errs):
    _containers(obj.get("spec") or {}, "spec", errs)
    if old is not None:
        old_spec, new_spec = dict(old.get("spec") or {}), dict(obj.get("spec") or {})
        for s in (old_spec, new_spec):
            s.pop("activeDeadlineSeconds", None)
            s.pop("tolerations", None)
            s["containers"] = [{k: v for k, v in c.items() if k != "image"} for c in s.get("containers") or []]
        if old_spec != new_spec:
            errs.append(field_error("Forbidden", "spec", "pod updates may not change fields other than "
                                    "`spec.containers[*].image`,`spec.initContainers[*].image`,"
                                    "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to "
                                    "existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be "
                                    "set to 1 if it was previously negative)"))


def _check_service(obj, old, errs):
    spec = obj.get("spec") or {}
    if spec.get("type") != "ExternalName" and spec.get("clusterIP") != "None" and not spec.get("ports"):
        errs.append(field_error("Required", "spec.ports", ""))
    for i, port in enumerate(spec.get("ports") or []):
        p = port.get("port")
        if not isinstance(p, int) or not 0 < p < 65536:
            errs.append(field_error("Invalid", f"spec.ports[{i}].port", "must be between 1 and 65535, inclusive", p))
    if old is not None and dig(old, "spec", "clusterIP") and spec.get("clusterIP") not in (
            None, "", dig(old, "spec", "clusterIP")):
        errs.append(field_error("Invalid", "spec.clusterIPs[0]", "may not change once set", spec.get("clusterIP")))


def _check_immutable_data(obj, old, errs):
    if old is not None and old.get("immutable"):
        if obj.get("data") != old.get("data") or obj.get("binaryData") != old.get("binaryData"):
            errs.append(field_error("Forbidden", "data", "field is immutable when `immutable` is set"))
        if not obj.get("immutable"):
            errs.append(field_error("Forbidden", "immutable", "field is immutable when `immutable` is set"))
    for key in (obj.get("data") or {}):
        if not re.match(r"^[-._a-zA-Z0-9]+$", key) or len(key) > 253:
            errs.append(field_error("Invalid", "data", "a valid config key must consist of alphanumeric "
                                    "characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or "
                                    "'key-name', regex used for validation is '[-._a-zA-Z0-9]+')", key))


def _check_hpa(obj, old, errs):
    spec = obj.get("spec") or {}
    if not spec.get("maxReplicas"):
        errs.append(field_error("Invalid", "spec.maxReplicas", "must be greater than 0", spec.get("maxReplicas", 0)))
    mn = spec.get("minReplicas")
    if mn is not None and spec.get("maxReplicas") and mn > spec["maxReplicas"]:
        errs.append(field_error("Invalid", "spec.maxReplicas", "must be greater than or equal to `minReplicas`",
                                spec["maxReplicas"]))
    if not dig(spec, "scaleTargetRef", "name"):
        errs.append(field_error("Required", "spec.scaleTargetRef.name", ""))


def _check_binding(obj, old, errs):
    if not dig(obj, "roleRef", "name"):
        errs.append(field_error("Required", "roleRef.name", ""))
    if old is not None and old.get("roleRef") != obj.get("roleRef"):
        errs.append(field_error("Invalid", "roleRef", "cannot change roleRef", obj.get("roleRef")))


def _cidr_valid(value):
    import ipaddress

    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return isinstance(value, str) and "/" in value


def _check_network_policy(obj, old, errs):
    """ipBlock peers: a CIDR, as the API server's IsValidCIDR wants (a bare address is refused)."""
    spec = obj.get("spec") or {}
    for direction, peers_key in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(spec.get(direction) or []):
            for j, peer in enumerate((rule or {}).get(peers_key) or []):
                block = (peer or {}).get("ipBlock")
                if block is None:
                    continue
                path = f"spec.{direction}[{i}].{peers_key}[{j}].ipBlock"
                cidr = block.get("cidr")
                if not cidr:
                    errs.append(field_error("Required", f"{path}.cidr", ""))
                    continue
                if not _cidr_valid(cidr):
                    errs.append(field_error("Invalid", f"{path}.cidr", "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)", cidr))
                for k, excluded in enumerate(block.get("except") or []):
                    if not _cidr_valid(excluded):
                        errs.append(field_error("Invalid", f"{path}.except[{k}]", "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)", excluded))


def _quantities(kind, values):
    for value in (values or {}).values():
        try:
            quantity.parse(value)
        except ValueError as err:
            raise bad_request(f'{kind} in version "v1" cannot be handled as a {kind}: {err}') from None


def _check_quota(obj, old, errs):
    _quantities("ResourceQuota", dig(obj, "spec", "hard"))


def _check_limit_range(obj, old, errs):
    for item in dig(obj, "spec", "limits", default=[]) or []:
        for key in ("default", "defaultRequest", "max", "min", "maxLimitRequestRatio"):
            _quantities("LimitRange", item.get(key))


_KIND_CHECKS = {
    "ResourceQuota": _check_quota, "LimitRange": _check_limit_range,
    "Deployment": _check_workload, "ReplicaSet": _check_workload, "Pod": _check_pod,
    "Service": _check_service, "ConfigMap": _check_immutable_data, "Secret": _check_immutable_data,
    "HorizontalPodAutoscaler": _check_hpa, "RoleBinding": _check_binding, "ClusterRoleBinding": _check_binding,
    "NetworkPolicy": _check_network_policy,
}
