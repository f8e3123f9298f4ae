"""The error shapes of the API as OpenAPI components (plain data: settings.py reads it)."""

ERROR_COMPONENTS = {
    "Error": {
        "type": "object",
        "description": "An error: `detail` says what went wrong; 500s add the `request_id` the logs know.",
        "properties": {"detail": {"type": "string"}, "request_id": {"type": "string"}},
        "required": ["detail"],
    },
    "ValidationError": {
        "description": "Field errors (`{\"field\": [\"message\"], \"nested.field\": [...]}`), or a `detail` for the whole request.",
        "oneOf": [
            {"type": "object", "additionalProperties": True},
            {"type": "array", "items": {}},
        ],
    },
}
