"""Kubernetes ``Status`` errors, phrased the way the real API server phrases them.

Clients (and the panel code tested against this stand-in) branch on
``status``/``reason``/``details`` of a ``Status`` body, so every failure the
stand-in produces goes through :class:`ApiError`, whose constructors copy the
wording of ``k8s.io/apimachinery/pkg/api/errors``.
"""

from __future__ import annotations


class ApiError(Exception):
    """An error the HTTP layer turns into a ``kind: Status`` response."""

    def __init__(self, code, reason, message, details=None, headers=None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self):
        body = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if not self.reason:  # StatusReasonUnknown: the real server leaves the field out
            del body["reason"]
        if self.details is not None:
            body["details"] = self.details
        return body


def qualified(resource, group):
    """``deployments.apps`` / ``pods``: how the server names a resource in messages."""
    return f"{resource}.{group}" if group else resource


def _details(name, group, kind, **extra):
    details = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    details["kind"] = kind
    details.update(extra)
    return details


def not_found(resource, group, name):
    return ApiError(404, "NotFound", f'{qualified(resource, group)} "{name}" not found',
                    _details(name, group, resource))


def already_exists(resource, group, name):
    return ApiError(409, "AlreadyExists", f'{qualified(resource, group)} "{name}" already exists',
                    _details(name, group, resource))


def conflict(resource, group, name, why=None):
    why = why or ("the object has been modified; please apply your changes "
                  "to the latest version and try again")
    return ApiError(409, "Conflict",
                    f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": {why}',
                    _details(name, group, resource))


def field_error(kind, field, message, bad_value=None, value_given=True):
    """One ``StatusCause`` of an Invalid error (``field.Invalid``/``Required``...)."""
    if kind == "Required":
        text, reason = f"Required value: {message}" if message else "Required value", "FieldValueRequired"
    elif kind == "Forbidden":
        text, reason = f"Forbidden: {message}", "FieldValueForbidden"
    elif kind == "Duplicate":
        text, reason = f"Duplicate value: {_go_repr(bad_value)}", "FieldValueDuplicate"
    elif kind == "NotSupported":
        text, reason = f"Unsupported value: {_go_repr(bad_value)}: {message}", "FieldValueNotSupported"
    else:
        shown = f"Invalid value: {_go_repr(bad_value)}: " if value_given else "Invalid value: "
        text, reason = shown + message, "FieldValueInvalid"
    return {"reason": reason, "message": text, "field": field}


def _go_repr(value):
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict):
        inner = ", ".join(f"{_go_repr(k)}:{_go_repr(v)}" for k, v in sorted(value.items()))
        return "map[string]string{" + inner + "}" if all(
            isinstance(v, str) for v in value.values()) else "{" + inner + "}"
    return str(value)


def invalid(kind, group, name, causes):
    """422 ``Invalid``: ``Deployment.apps "x" is invalid: spec.replicas: ...``."""
    qualified_kind = f"{kind}.{group}" if group else kind
    parts = [f"{c['field']}: {c['message']}" for c in causes]
    joined = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    return ApiError(422, "Invalid", f'{qualified_kind} "{name}" is invalid: {joined}',
                    _details(name, group, kind, causes=causes))


def bad_request(message):
    return ApiError(400, "BadRequest", message)


def forbidden(resource, group, name, why, **detail_extra):
    prefix = qualified(resource, group)
    subject = f'{prefix} "{name}"' if name else prefix
    return ApiError(403, "Forbidden", f"{subject} is forbidden: {why}",
                    _details(name, group, resource, **detail_extra))


def unauthorized():
    return ApiError(401, "Unauthorized", "Unauthorized")


def method_not_allowed():
    return ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")


def gone(message):
    return ApiError(410, "Expired", message)


def unsupported_media_type():
    return ApiError(415, "UnsupportedMediaType",
                    "the body of the request was in an unknown format - accepted media types include: "
                    "application/json-patch+json, application/merge-patch+json, "
                    "application/apply-patch+yaml, application/strategic-merge-patch+json")


REASON_FOR_CODE = {
    400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
    405: "MethodNotAllowed", 409: "Conflict", 410: "Expired", 422: "Invalid",
    429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable",
    504: "Timeout",
}


def injected(code, message=None):
    reason = REASON_FOR_CODE.get(code, "InternalError" if code >= 500 else "BadRequest")
    return ApiError(code, reason, message or f"injected fault ({code} {reason})")
