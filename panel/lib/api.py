"""REST API plumbing shared by every app: the exception handler and small helpers."""

import json
import logging
import uuid

from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from panel.audit.context import current_request_id

from .unavailable import database_unavailable_response, is_database_outage

logger = logging.getLogger("filrouge.api")


def exception_handler(exc, context):
    if isinstance(exc, RequestDataTooBig):
        return Response({"detail": "The request body is too large."}, status=413)
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return Response(detail, status=status.HTTP_400_BAD_REQUEST)
    if is_database_outage(exc):
        # Not our bug, and not the client's: answer 503 so that it retries later.
        unavailable = database_unavailable_response(context["request"]._request, exc)
        return Response(json.loads(unavailable.content), status=503, headers={"Retry-After": unavailable["Retry-After"]})
    if isinstance(exc, DataError):
        # A value the database cannot hold (a NUL byte in a name looked up, a number out of range):
        # the client's input, found by the database rather than a serializer.
        return Response({"detail": "A value in the request cannot be stored or looked up: it is out of range or contains NUL (\\x00) characters."},
                        status=status.HTTP_400_BAD_REQUEST)
    response = drf_exception_handler(exc, context)
    if response is not None:
        return response
    # Our code broke: log it with the request id, never send a traceback to the client.
    request_id = current_request_id() or uuid.uuid4().hex
    logger.exception("Unhandled API error (request %s)", request_id)
    return Response(
        {"detail": "Internal error. The administrators can find it in the logs.", "request_id": request_id},
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )
