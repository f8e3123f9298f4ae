import re

from .context import acting_as

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def client_ip(request):
    # REMOTE_ADDR only: X-Forwarded-For is trivially forged unless a known proxy sets it.
    return request.META.get("REMOTE_ADDR")


class AuditContextMiddleware:
    """Gives every request an id (kept from a well-formed X-Request-ID) and an audit actor."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        source = "api" if request.path.startswith("/api/") else "web"
        with acting_as(
            source=source,
            request=request,
            ip=client_ip(request),
            request_id=incoming if _REQUEST_ID.match(incoming) else None,
        ) as actor:
            request.request_id = actor.request_id
            response = self.get_response(request)
        response["X-Request-ID"] = actor.request_id
        return response
