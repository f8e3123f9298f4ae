"""The answer when the database is unreachable: a branded 503 with a request id, never
gunicorn's bare "Internal Server Error" nor a traceback.

Rendering touches neither the database nor the session (no request context), so it works
precisely when they do not. The middleware catches what views raise; `server_error`
(handler500) hands over what middlewares raise (a session or user lookup).
"""

import logging
import uuid

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from .outage import DATABASE_ERRORS

logger = logging.getLogger("filrouge.web")

RETRY_AFTER_SECONDS = 30


def is_database_outage(exception):
    return isinstance(exception, DATABASE_ERRORS)


def database_unavailable_response(request, exception=None):
    request_id = getattr(request, "request_id", "") or uuid.uuid4().hex
    logger.warning("503 for %s %s (request %s): the database is unreachable: %s", request.method, request.path, request_id,
                   str(exception).strip().splitlines()[0][:200] if exception and str(exception).strip() else type(exception).__name__)
    message = _("The panel cannot reach its database right now. Please try again in a moment.")
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": message, "request_id": request_id}, status=503)
    else:
        body = render_to_string(
            "503.html",
            {"site_name": settings.SITE_NAME, "message": message, "request_id": request_id, "language_code": get_language() or "en"},
        )
        response = HttpResponse(body, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["X-Request-ID"] = request_id
    return response


class DatabaseUnavailableMiddleware:
    """A view that fails because the database is away answers 503 (branded, with a request id)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if is_database_outage(exception):
            return database_unavailable_response(request, exception)
        return None
