"""Server-side apply and ``metadata.managedFields`` bookkeeping.

A simplified structured-merge-diff: an object is flattened into field paths
(``f:spec``, ``f:replicas``; list items of associative lists as
``k:{"name":"web"}``; set members as ``v:"x"``), each managedFields entry
owns a set of paths, and

* an **Update** (create/PUT/PATCH) gives its manager every path whose value it
  changed and takes those paths away from everybody else;
* an **Apply** owns exactly the paths of its applied configuration, fails with
  a 409 listing ``conflict with "m" using apps/v1: .spec.replicas`` when a path
  owned by another manager would change value (unless ``force``), and removes
  fields it stopped applying when nobody else owns them.

What is not modelled: per-version field conversion of managedFields, granular
vs atomic struct metadata beyond a few known cases, and unions.
"""

from __future__ import annotations

import json

from .errors import ApiError
from .meta import clone, rfc3339
from .patches import KEY_DEFAULTS, PRIMITIVE_MERGE, ssa_keys

MARKER = object()           # "this list item / map exists" (the "." entry)
_KEPT_METADATA = ("labels", "annotations", "finalizers", "ownerReferences")


def _key_token(item, keys):
    kd = {}
    for k in keys:
        if k in item:
            kd[k] = item[k]
        elif k in KEY_DEFAULTS:
            kd[k] = KEY_DEFAULTS[k]
    return "k:" + json.dumps(kd, sort_keys=True, separators=(",", ":"))


def _is_atomic_struct(field, value):
    return field == "selector" and isinstance(value, dict) and (
        "matchLabels" in value or "matchExpressions" in value)


def _walk(value, path, field, out):
    if isinstance(value, dict):
        if (not value and path) or _is_atomic_struct(field, value):
            out[path] = value
            return
        for k, v in value.items():
            _walk(v, path + ("f:" + k,), k, out)
    elif isinstance(value, list):
        keys = ssa_keys(field, value) if value and all(isinstance(i, dict) for i in value) else None
        if keys:
            for item in value:
                tok = _key_token(item, keys)
                out[path + (tok,)] = MARKER
                for k, v in item.items():
                    _walk(v, path + (tok, "f:" + k), k, out)
        elif field in PRIMITIVE_MERGE and all(not isinstance(i, (dict, list)) for i in value):
            for item in value:
                out[path + ("v:" + json.dumps(item),)] = MARKER
        else:
            out[path] = value
    else:
        out[path] = value


def field_paths(obj, scope="all", has_status=True):
    """{path: value} for the fields of ``obj`` that field management tracks."""
    out = {}
    for key, value in (obj or {}).items():
        if key in ("apiVersion", "kind"):
            continue
        if key == "metadata":
            for mk in _KEPT_METADATA:
                if mk in (value or {}):
                    _walk(value[mk], ("f:metadata", "f:" + mk), mk, out)
            continue
        if key == "status" and has_status:
            if scope == "main":
                continue
        elif scope == "status":
            continue
        _walk(value, ("f:" + key,), key, out)
    return out


def _tree_from_set(pathset, markers):
    tree = {}
    for path in sorted(pathset):
        node = tree
        for tok in path:
            node = node.setdefault(tok, {})
        if path in markers and path[-1].startswith("k:"):
            node["."] = {}
    return tree


def from_tree(tree, prefix=()):
    out = set()
    for key, sub in (tree or {}).items():
        if key == ".":
            out.add(prefix)
            continue
        path = prefix + (key,)
        if not sub or key.startswith("v:"):
            out.add(path)
        else:
            out |= from_tree(sub, path)
    return out


def path_str(path):
    text = ""
    for tok in path:
        kind, rest = tok[:1], tok[2:]
        if kind == "f":
            text += "." + rest
        elif kind == "k":
            kd = json.loads(rest)
            text += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in kd.items()) + "]"
        elif kind == "v":
            text += "[=" + rest + "]"
        else:
            text += "[" + rest + "]"
    return text


def _entry_id(e):
    return (e.get("manager"), e.get("operation"), e.get("subresource", ""))


def _entries(obj):
    out = []
    for e in (obj or {}).get("metadata", {}).get("managedFields") or []:
        out.append({"entry": e, "paths": from_tree(e.get("fieldsV1") or {})})
    return out


def _render(entries, current):
    rendered = []
    markers = {p for p, v in current.items() if v is MARKER}
    for item in entries:
        paths = {p for p in item["paths"] if p in current or any(p == c[:len(p)] for c in current)}
        if not paths:
            continue
        entry = dict(item["entry"])
        entry["fieldsType"] = "FieldsV1"
        entry["fieldsV1"] = _tree_from_set(paths, markers)
        rendered.append(entry)
    return rendered


def record_update(old, new, manager, api_version, subresource="", has_status=True):
    """Set ``new.metadata.managedFields`` after an Update by ``manager``.

    On create (``old`` is None) the status the server reset is owned by nobody.
    """
    old_paths = field_paths(old, "all", has_status) if old else {}
    new_paths = field_paths(new, "all", has_status)
    owned = field_paths(new, "main", has_status) if old is None else new_paths
    changed = {p for p, v in owned.items()
               if p not in old_paths or (v is not MARKER and old_paths[p] != v)}
    entries = _entries(old) if old else []
    me = None
    for item in entries:
        if _entry_id(item["entry"]) == (manager, "Update", subresource or ""):
            me = item
        else:
            item["paths"] -= changed
    if changed:
        if me is None:
            me = {"entry": {"manager": manager, "operation": "Update"}, "paths": set()}
            entries.append(me)
        me["paths"] |= changed
        me["entry"] = dict(me["entry"], apiVersion=api_version, time=rfc3339())
        if subresource:
            me["entry"]["subresource"] = subresource
    new.setdefault("metadata", {})["managedFields"] = _render(entries, new_paths)
    if not new["metadata"]["managedFields"]:
        new["metadata"].pop("managedFields")


def _manager_label(entry):
    label = json.dumps(entry.get("manager", ""))
    if entry.get("subresource"):
        label += f' with subresource {json.dumps(entry["subresource"])}'
    if entry.get("operation") == "Update":
        label += f" using {entry.get('apiVersion')}"
    return label


def conflict_error(rtype, name, conflicts):
    causes = [{"reason": "FieldManagerConflict", "message": f"conflict with {_manager_label(e)}",
               "field": path_str(p)} for p, e in conflicts]
    if len(conflicts) == 1:
        p, e = conflicts[0]
        message = f"Apply failed with 1 conflict: conflict with {_manager_label(e)}: {path_str(p)}"
    else:
        by_manager = {}
        for p, e in conflicts:
            by_manager.setdefault(_manager_label(e), []).append(path_str(p))
        lines = []
        for label in sorted(by_manager):
            lines.append(f"conflicts with {label}:")
            lines.extend(f"- {p}" for p in by_manager[label])
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    details = {"name": name, "kind": rtype.plural, "causes": causes}
    if rtype.group:
        details = {"name": name, "group": rtype.group, "kind": rtype.plural, "causes": causes}
    return ApiError(409, "Conflict", message, details)


def structured_merge(live, applied, field=None):
    if isinstance(applied, dict) and isinstance(live, dict) and not _is_atomic_struct(field, applied):
        out = clone(live)
        for k, v in applied.items():
            if v is None:
                out.pop(k, None)
            else:
                out[k] = structured_merge(live.get(k), v, k)
        return out
    if isinstance(applied, list) and isinstance(live, list):
        if field in PRIMITIVE_MERGE:
            return list(applied) + [v for v in live if v not in applied]
        items = applied + live
        keys = ssa_keys(field, items) if items and all(isinstance(i, dict) for i in items) else None
        if keys:
            live_by = {_key_token(i, keys): i for i in live}
            out, seen = [], set()
            for item in applied:
                tok = _key_token(item, keys)
                seen.add(tok)
                out.append(structured_merge(live_by.get(tok), item, None) if tok in live_by else clone(item))
            out.extend(clone(i) for i in live if _key_token(i, keys) not in seen)
            return out
    return clone(applied)


def _delete_path(obj, path):
    node, parents = obj, []
    for tok in path[:-1]:
        parents.append((node, tok))
        node = _step(node, tok)
        if node is None:
            return
    last = path[-1]
    if isinstance(node, dict) and last.startswith("f:"):
        node.pop(last[2:], None)
    elif isinstance(node, list) and last.startswith("k:"):
        kd = json.loads(last[2:])
        node[:] = [i for i in node if not (isinstance(i, dict) and all(
            i.get(k, KEY_DEFAULTS.get(k)) == v for k, v in kd.items()))]
    elif isinstance(node, list) and last.startswith("v:"):
        value = json.loads(last[2:])
        node[:] = [i for i in node if i != value]
    # prune containers left empty by the removal
    for parent, tok in reversed(parents):
        child = _step(parent, tok)
        if child in ({}, []) and tok.startswith("f:") and isinstance(parent, dict):
            parent.pop(tok[2:], None)
        else:
            break


def _step(node, tok):
    if tok.startswith("f:") and isinstance(node, dict):
        return node.get(tok[2:])
    if tok.startswith("k:") and isinstance(node, list):
        kd = json.loads(tok[2:])
        for i in node:
            if isinstance(i, dict) and all(i.get(k, KEY_DEFAULTS.get(k)) == v for k, v in kd.items()):
                return i
    return None


def server_side_apply(rtype, live, applied, manager, api_version, force, subresource=""):
    """Return the merged object (managedFields set) or raise a 409 conflict."""
    scope = "status" if subresource == "status" else "main"
    cfg = field_paths(applied, scope, rtype.has_status)
    me_id = (manager, "Apply", subresource or "")
    entries = _entries(live) if live else []
    live_paths = field_paths(live, "all", rtype.has_status) if live else {}
    conflicts = []
    for path, value in cfg.items():
        if value is MARKER or path not in live_paths or live_paths[path] == value:
            continue
        for item in entries:
            if _entry_id(item["entry"]) != me_id and path in item["paths"]:
                conflicts.append((path, item["entry"]))
    if conflicts and not force:
        raise conflict_error(rtype, applied["metadata"]["name"], conflicts)
    for path, _ in conflicts:
        for item in entries:
            if _entry_id(item["entry"]) != me_id:
                item["paths"].discard(path)
    merged_body = {k: v for k, v in applied.items() if k not in ("apiVersion", "kind")}
    if scope == "main" and rtype.has_status:
        merged_body.pop("status", None)
    merged = structured_merge(live or {}, merged_body)
    merged["apiVersion"], merged["kind"] = applied.get("apiVersion"), applied.get("kind")
    me = next((i for i in entries if _entry_id(i["entry"]) == me_id), None)
    if me is not None:
        others = set().union(*[i["paths"] for i in entries if i is not me]) if len(entries) > 1 else set()
        for path in sorted(me["paths"] - set(cfg), key=len, reverse=True):
            if path not in others and not any(o[:len(path)] == path for o in others):
                _delete_path(merged, path)
    else:
        me = {"entry": {"manager": manager, "operation": "Apply"}, "paths": set()}
        entries.append(me)
    if me["paths"] != set(cfg) or "time" not in me["entry"] or me["entry"].get("apiVersion") != api_version:
        me["entry"] = dict(me["entry"], apiVersion=api_version, time=rfc3339())
    me["paths"] = set(cfg)
    if subresource:
        me["entry"]["subresource"] = subresource
    final_paths = field_paths(merged, "all", rtype.has_status)
    merged.setdefault("metadata", {})["managedFields"] = _render(entries, final_paths)
    return merged


def refresh_managed(obj, has_status=True):
    """Drop paths that no longer exist (after defaulting or removal)."""
    if not obj.get("metadata", {}).get("managedFields"):
        return
    obj["metadata"]["managedFields"] = _render(_entries(obj), field_paths(obj, "all", has_status))
