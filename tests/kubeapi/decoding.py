"""Typed decoding of a server-side apply body, failing the way the real API server fails.

Why: a manifest with a wrongly typed field (``replicas: "two"``, ``containers: {}``) is
not refused by validation (422) on a real cluster: server-side apply first converts the
patch into a typed object with structured-merge-diff, and that conversion error comes
back as **HTTP 500** with no reason, e.g.::

    {"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
     "message":"failed to create typed patch object (ns/web; apps/v1, Kind=Deployment):
     .spec.replicas: expected numeric (int or float), got string","code":500}

(kubernetes/kubernetes#122480 shows the same answer for an undeclared field; a fix to
answer 400 instead is proposed upstream but not released.) The wording below copies
structured-merge-diff's ``typed/validation.go`` and ``typed/helpers.go``: ``%T`` of the
Go value for numbers, ``%#v`` of the value wrapper for strings, ``%v`` for lists and maps.

Only the fields clients most often get wrong are typed here (object metadata, the pod
template and containers, Deployment/ReplicaSet/Service/ConfigMap/Secret specs); any
other field is accepted as it is, like the rest of the stand-in's validation.
"""

from __future__ import annotations

from .errors import ApiError

# Field kinds: "int", "str", "bool", "intstr" (int or string), ("map", value kind or
# schema dict), ("list", item schema, key field or None), or a dict (a struct).
STRING_MAP = ("map", "str")

CONTAINER_PORT = {"containerPort": "int", "hostPort": "int", "name": "str", "protocol": "str", "hostIP": "str"}
ENV_VAR = {"name": "str", "value": "str"}
PROBE = {"initialDelaySeconds": "int", "periodSeconds": "int", "timeoutSeconds": "int", "failureThreshold": "int",
         "successThreshold": "int", "httpGet": {"path": "str", "port": "intstr", "scheme": "str"},
         "tcpSocket": {"port": "intstr"}, "exec": {"command": ("list", "str", None)}}
CONTAINER = {
    "name": "str", "image": "str", "imagePullPolicy": "str", "workingDir": "str",
    "command": ("list", "str", None), "args": ("list", "str", None),
    "ports": ("list", CONTAINER_PORT, "containerPort"), "env": ("list", ENV_VAR, "name"),
    "resources": {"limits": STRING_MAP, "requests": STRING_MAP},
    "readinessProbe": PROBE, "livenessProbe": PROBE, "startupProbe": PROBE,
    "stdin": "bool", "tty": "bool",
}
VOLUME = {"name": "str", "configMap": {"name": "str"}, "secret": {"secretName": "str", "defaultMode": "int"},
          "persistentVolumeClaim": {"claimName": "str", "readOnly": "bool"}, "emptyDir": {"medium": "str"}}
POD_SPEC = {
    "containers": ("list", CONTAINER, "name"), "initContainers": ("list", CONTAINER, "name"),
    "volumes": ("list", VOLUME, "name"), "restartPolicy": "str", "serviceAccountName": "str",
    "nodeSelector": STRING_MAP, "terminationGracePeriodSeconds": "int", "hostNetwork": "bool",
    "automountServiceAccountToken": "bool", "nodeName": "str", "schedulerName": "str",
}
OBJECT_META = {"name": "str", "namespace": "str", "labels": STRING_MAP, "annotations": STRING_MAP, "generateName": "str"}
LABEL_SELECTOR = {"matchLabels": STRING_MAP}
TEMPLATE = {"metadata": OBJECT_META, "spec": POD_SPEC}
WORKLOAD_SPEC = {
    "replicas": "int", "minReadySeconds": "int", "revisionHistoryLimit": "int", "paused": "bool",
    "progressDeadlineSeconds": "int", "selector": LABEL_SELECTOR, "template": TEMPLATE,
    "strategy": {"type": "str", "rollingUpdate": {"maxSurge": "intstr", "maxUnavailable": "intstr"}},
}
SERVICE_PORT = {"name": "str", "port": "int", "targetPort": "intstr", "nodePort": "int", "protocol": "str"}
SCHEMAS = {
    "Deployment": {"metadata": OBJECT_META, "spec": WORKLOAD_SPEC},
    "ReplicaSet": {"metadata": OBJECT_META, "spec": WORKLOAD_SPEC},
    "Pod": {"metadata": OBJECT_META, "spec": POD_SPEC},
    "Service": {"metadata": OBJECT_META, "spec": {"type": "str", "selector": STRING_MAP, "clusterIP": "str",
                                                  "ports": ("list", SERVICE_PORT, "port")}},
    "ConfigMap": {"metadata": OBJECT_META, "data": STRING_MAP, "immutable": "bool"},
    "Secret": {"metadata": OBJECT_META, "data": STRING_MAP, "stringData": STRING_MAP, "type": "str", "immutable": "bool"},
}


def _go_type(value):
    """What Go's %T prints for a value decoded from JSON into interface{}."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, list):
        return "[]interface {}"
    return "<nil>"


def _go_value(value):
    """What Go's %v prints for a plain decoded value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go_value(v)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_go_value(v) for v in value) + "]"
    if value is None:
        return "<nil>"
    return str(value)


def _go_quoted(value):
    """What Go's %#v prints for a plain decoded value inside the value wrapper."""
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return _go_value(value)


def _errors(value, schema, path, out):
    if value is None:
        return
    if schema == "int":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            out.append(f"{path}: expected numeric (int or float), got {_go_type(value)}")
    elif schema == "str":
        if not isinstance(value, str):
            out.append(f"{path}: expected string, got &value.valueUnstructured{{Value:{_go_quoted(value)}}}")
    elif schema == "bool":
        if not isinstance(value, bool):
            out.append(f"{path}: expected boolean, got &{{{_go_value(value)}}}")
    elif schema == "intstr":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            out.append(f"{path}: expected any scalar, got &{{{_go_value(value)}}}")
    elif isinstance(schema, dict):
        if not isinstance(value, dict):
            out.append(f"{path}: expected map, got &{{{_go_value(value)}}}")
            return
        for key, item in value.items():
            if key in schema:
                _errors(item, schema[key], f"{path}.{key}", out)
    elif schema[0] == "map":
        if not isinstance(value, dict):
            out.append(f"{path}: expected map, got &{{{_go_value(value)}}}")
            return
        for key, item in value.items():
            _errors(item, schema[1], f"{path}.{key}", out)
    elif schema[0] == "list":
        if not isinstance(value, list):
            out.append(f"{path}: expected list, got &{{{_go_value(value)}}}")
            return
        item_schema, key = schema[1], schema[2]
        for index, item in enumerate(value):
            if key and isinstance(item, dict) and key in item:
                label = f'[{key}={_go_quoted(item[key])}]'
            else:
                label = f"[{index}]"
            _errors(item, item_schema, f"{path}{label}", out)


def check_apply_body(rtype, body, namespace, name, api_version):
    """Raise the real server's 500 when the apply body does not decode into its kind."""
    schema = SCHEMAS.get(rtype.kind)
    if schema is None or not isinstance(body, dict):
        return
    problems = []
    _errors({k: v for k, v in body.items() if k in schema}, schema, "", problems)
    if not problems:
        return
    detail = problems[0] if len(problems) == 1 else "errors:\n  " + "\n  ".join(problems)
    group_version = api_version if "/" in api_version else f"/{api_version}"
    message = f"failed to create typed patch object ({namespace or ''}/{name}; {group_version}, Kind={rtype.kind}): {detail}"
    raise ApiError(500, "", message)
