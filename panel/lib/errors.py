"""Error pages: JSON under /api/, a plain page elsewhere; never a traceback."""

import sys

from django.http import JsonResponse
from django.shortcuts import render

from .unavailable import database_unavailable_response, is_database_outage


def _respond(request, status, title, message):
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message}, status=status)
    return render(request, "errors/error.html", {"status": status, "title": title, "message": message}, status=status)


def bad_request(request, exception=None):
    return _respond(request, 400, "Bad request", "The request could not be understood.")


def permission_denied(request, exception=None):
    message = str(exception) if exception and str(exception) else "You do not have access to this."
    return _respond(request, 403, "Forbidden", message)


def not_found(request, exception=None):
    return _respond(request, 404, "Not found", "There is nothing here, or it is not yours to see.")


def server_error(request):
    exception = sys.exc_info()[1]  # handler500 runs inside Django's except block
    if is_database_outage(exception):
        return database_unavailable_response(request, exception)
    request_id = getattr(request, "request_id", "")
    return _respond(request, 500, "Internal error", f"Something broke on our side. Request id: {request_id}")
