"""The three PATCH formats: JSON merge patch (RFC 7386), strategic merge
patch, and JSON patch (RFC 6902).

Strategic merge only needs to know which lists are merged by key; the table
below covers the built-in kinds the stand-in serves (containers by name,
ports by port number, conditions by type...).  Directives ``$patch``,
``$retainKeys``, ``$deleteFromPrimitiveList`` and ``$setElementOrder`` are
understood.  The same key table tells server-side apply which lists are
associative.
"""

from __future__ import annotations

from .errors import ApiError, bad_request
from .meta import clone

# patchMergeKey for strategic merge patch (one key per list field)
SMP_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name",
    "volumes": "name", "env": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath",
    "imagePullSecrets": "name", "hostAliases": "ip", "conditions": "type",
    "ownerReferences": "uid", "resourceClaims": "name", "topologySpreadConstraints": "topologyKey",
}
# lists of scalars merged as sets
PRIMITIVE_MERGE = {"finalizers"}


def smp_key(field, items):
    if field == "ports":
        for it in items:
            if isinstance(it, dict) and "containerPort" in it:
                return "containerPort"
        return "port"
    return SMP_KEYS.get(field)


# listMapKeys for server-side apply (possibly several keys, with defaults)
def ssa_keys(field, items):
    if field == "ports":
        if any(isinstance(it, dict) and "containerPort" in it for it in items):
            return ("containerPort", "protocol")
        return ("port", "protocol")
    key = SMP_KEYS.get(field)
    return (key,) if key else None


KEY_DEFAULTS = {"protocol": "TCP"}


def merge_patch(target, patch):
    """RFC 7386."""
    if not isinstance(patch, dict):
        return clone(patch)
    result = clone(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge(target, patch):
    if not isinstance(patch, dict):
        raise bad_request("strategic merge patch body must be a JSON object")
    return _smp_map(clone(target) if isinstance(target, dict) else {}, patch)


def _smp_map(original, patch):
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: clone(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(original.get(field), list):
                original[field] = [v for v in original[field] if v not in (value or [])]
            continue
        if value is None:
            original.pop(key, None)
        elif isinstance(value, dict):
            merged = _smp_map(original.get(key) if isinstance(original.get(key), dict) else {}, value)
            if merged is None:
                original.pop(key, None)
            else:
                original[key] = merged
        elif isinstance(value, list):
            original[key] = _smp_list(key, original.get(key), value)
        else:
            original[key] = value
    if isinstance(retain, list):
        for key in list(original):
            if key not in retain:
                original.pop(key)
    return original


def _smp_list(field, original, patch):
    original = original if isinstance(original, list) else []
    if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
        return [clone(i) for i in patch if not (isinstance(i, dict) and i.get("$patch") == "replace")]
    if field in PRIMITIVE_MERGE:
        out = list(original)
        for v in patch:
            if v not in out:
                out.append(v)
        return out
    key = smp_key(field, original + patch)
    if not key or not all(isinstance(i, dict) for i in patch):
        return clone(patch)
    out = [clone(i) for i in original]
    for item in patch:
        match = next((o for o in out if isinstance(o, dict) and o.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            out = [o for o in out if not (isinstance(o, dict) and o.get(key) == item.get(key))]
        elif match is not None:
            merged = _smp_map(match, item)
            out[out.index(match)] = merged
        else:
            out.append({k: clone(v) for k, v in item.items() if k != "$patch"})
    return out


# --- RFC 6902 -----------------------------------------------------------------

def _pointer(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(f'the server rejected our request due to an error in our request: invalid path "{path}"')
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc, tokens, op):
    node = doc
    for tok in tokens[:-1]:
        if isinstance(node, dict) and tok in node:
            node = node[tok]
        elif isinstance(node, list) and tok.isdigit() and int(tok) < len(node):
            node = node[int(tok)]
        else:
            raise ApiError(422, "Invalid",
                           f"the server rejected our request due to an error in our request: "
                           f"doc is missing path: \"/{'/'.join(tokens)}\": missing value")
    return node


def _missing(tokens):
    return ApiError(422, "Invalid",
                    f"the server rejected our request due to an error in our request: "
                    f"doc is missing path: \"/{'/'.join(tokens)}\": missing value")


def json_patch(doc, ops):
    if not isinstance(ops, list):
        raise bad_request("json patch must be a list of operations")
    doc = clone(doc)
    for op in ops:
        kind = op.get("op")
        tokens = _pointer(op.get("path", ""))
        if kind == "test":
            if _get(doc, tokens) != op.get("value"):
                raise ApiError(422, "Invalid",
                               "the server rejected our request due to an error in our request: "
                               f"testing value /{'/'.join(tokens)} failed: test failed")
            continue
        if kind in ("move", "copy"):
            src = _pointer(op.get("from", ""))
            value = clone(_get(doc, src))
            if kind == "move":
                doc = _remove(doc, src)
            doc = _add(doc, tokens, value)
        elif kind == "add":
            doc = _add(doc, tokens, clone(op.get("value")))
        elif kind == "remove":
            doc = _remove(doc, tokens)
        elif kind == "replace":
            _get(doc, tokens)
            doc = _remove(doc, tokens)
            doc = _add(doc, tokens, clone(op.get("value")))
        else:
            raise bad_request(f'Unexpected kind: {kind}')
    return doc


def _get(doc, tokens):
    node = doc
    for tok in tokens:
        if isinstance(node, dict) and tok in node:
            node = node[tok]
        elif isinstance(node, list) and tok.isdigit() and int(tok) < len(node):
            node = node[int(tok)]
        else:
            raise _missing(tokens)
    return node


def _add(doc, tokens, value):
    if not tokens:
        return value
    parent = _walk(doc, tokens, "add")
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent):
            parent.insert(int(last), value)
        else:
            raise _missing(tokens)
    else:
        raise _missing(tokens)
    return doc


def _remove(doc, tokens):
    parent = _walk(doc, tokens, "remove")
    last = tokens[-1]
    if isinstance(parent, dict) and last in parent:
        del parent[last]
    elif isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        del parent[int(last)]
    else:
        raise _missing(tokens)
    return doc
