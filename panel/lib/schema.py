"""The OpenAPI schema's default error responses.

Every operation documents the errors the API really answers (docs/api-guide.md, "Errors"):
400 (field errors, or a `detail`), 401 (no or a bad token), 403 (role, scope, object),
404 (unknown id), 409 (state conflict) and, for writes, 413 (body too large) and 415
(not JSON or a form). Schemathesis checks that no other status comes back
(tests/panel/security/test_api_schema.py). An operation that documents one of these
codes itself keeps its own.
"""

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema

from .error_schemas import ERROR_COMPONENTS  # noqa: F401 - the components the responses point at

_ALWAYS = {
    "400": ("Bad request: field errors, a malformed body or query parameter.", "ValidationError"),
    "401": ("No token, or a token that is unknown, revoked or expired.", "Error"),
    "403": ("The token's scope or the user's role does not allow this.", "Error"),
    "404": ("No such object, or not one this user may see.", "Error"),
    "409": ("The object's state does not allow this now (e.g. a job already running): a detail, field errors or reasons.", "ValidationError"),
}
_WRITES = {
    "413": ("The request body is too large.", "Error"),
    "415": ("The body is not JSON (or a form).", "Error"),
}


class AutoSchema(SpectacularAutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        errors = dict(_ALWAYS)
        if self.method in ("POST", "PUT", "PATCH", "DELETE"):
            errors.update(_WRITES)
        for code, (description, component) in errors.items():
            responses.setdefault(code, {
                "description": description,
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{component}"}}},
            })
        return responses
