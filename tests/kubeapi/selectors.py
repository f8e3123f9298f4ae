"""Label and field selectors, parsed and matched like the API server does.

Label selectors accept the full grammar (``=``, ``==``, ``!=``, ``in``,
``notin``, ``key``, ``!key``); field selectors accept ``=``, ``==``, ``!=``
on ``metadata.name``/``metadata.namespace`` plus the per-kind fields the real
server indexes (``status.phase``, ``spec.nodeName``, ``involvedObject.*``...).
An unknown field answers 400 with the real message.
"""

from __future__ import annotations

import re

from .errors import bad_request
from .meta import dig

_KEY = re.compile(r"^([a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def _split_top(text):
    """Split on commas that are not inside parentheses."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


_SET_RE = re.compile(r"^(?P<key>[^\s!=()]+)\s+(?P<op>in|notin)\s*\((?P<vals>[^)]*)\)$")
_EQ_RE = re.compile(r"^(?P<key>[^\s!=()]+)\s*(?P<op>==|=|!=)\s*(?P<val>[^\s=!(),]*)$")


def parse_label_selector(text):
    """Return a list of (key, op, values) requirements."""
    reqs = []
    if not text or not text.strip():
        return reqs
    for part in _split_top(text):
        m = _SET_RE.match(part)
        if m:
            vals = [v.strip() for v in m.group("vals").split(",") if v.strip()]
            reqs.append((_checked_key(m.group("key"), text), m.group("op"), vals))
            continue
        m = _EQ_RE.match(part)
        if m:
            op = "!=" if m.group("op") == "!=" else "="
            reqs.append((_checked_key(m.group("key"), text), op, [m.group("val")]))
            continue
        if part.startswith("!"):
            reqs.append((_checked_key(part[1:].strip(), text), "!", []))
            continue
        if re.match(r"^[^\s!=(),]+$", part):
            reqs.append((_checked_key(part, text), "exists", []))
            continue
        raise bad_request(f"unable to parse requirement: found '{part}', expected: ',' or end of string")
    return reqs


def _checked_key(key, whole):
    if not _KEY.match(key):
        raise bad_request(f"unable to parse requirement: values[0][{key}]: Invalid value: \"{key}\": "
                          "name part must consist of alphanumeric characters, '-', '_' or '.', and must "
                          "start and end with an alphanumeric character")
    return key


def labels_match(reqs, labels):
    labels = labels or {}
    for key, op, vals in reqs:
        present = key in labels
        val = labels.get(key)
        if op == "=" and (not present or val != vals[0]):
            return False
        if op == "!=" and present and val == vals[0]:
            return False
        if op == "in" and (not present or val not in vals):
            return False
        if op == "notin" and present and val in vals:
            return False
        if op == "exists" and not present:
            return False
        if op == "!" and present:
            return False
    return True


def selector_from_label_selector(sel):
    """Turn a ``LabelSelector`` object (matchLabels/matchExpressions) into requirements."""
    reqs = []
    if not sel:
        return reqs
    for k, v in sorted((sel.get("matchLabels") or {}).items()):
        reqs.append((k, "=", [v]))
    for expr in sel.get("matchExpressions") or []:
        op = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}.get(expr.get("operator"))
        if op:
            reqs.append((expr.get("key"), op, list(expr.get("values") or [])))
    return reqs


# --- field selectors ---------------------------------------------------------

def parse_field_selector(text, rtype):
    reqs = []
    if not text or not text.strip():
        return reqs
    for part in _split_top(text):
        m = re.match(r"^([^=!]+?)\s*(==|=|!=)\s*(.*)$", part)
        if not m:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        key, op, val = m.group(1).strip(), m.group(2), m.group(3).strip()
        allowed = ("metadata.name", "metadata.namespace") + tuple(rtype.field_selectors)
        if key not in allowed:
            if rtype.field_selectors:
                raise bad_request(f"field label not supported: {key}")
            raise bad_request(f'"{key}" is not a known field selector: only "metadata.name", "metadata.namespace"')
        reqs.append((key, "!=" if op == "!=" else "=", val))
    return reqs


def field_value(obj, key):
    if key == "source":
        return dig(obj, "source", "component", default="") or ""
    if key == "spec.unschedulable":
        return "true" if dig(obj, "spec", "unschedulable") else "false"
    if key == "spec.hostNetwork":
        return "true" if dig(obj, "spec", "hostNetwork") else "false"
    if key == "status.replicas":
        return str(dig(obj, "status", "replicas", default=0) or 0)
    value = dig(obj, *key.split("."))
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def fields_match(reqs, obj):
    for key, op, val in reqs:
        actual = field_value(obj, key)
        if op == "=" and actual != val:
            return False
        if op == "!=" and actual == val:
            return False
    return True
