"""One JSON error shape for every failure of the API:

    {"error": {"code": "...", "message": "...", "details": {...}}}

No traceback ever reaches a client: unexpected exceptions are logged and answered with 500."""

import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import (
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from loupe.errors import ApplicationError

logger = logging.getLogger(__name__)


def error_body(code: str, message: str, details=None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _refused_request(exc: SuspiciousOperation) -> Response:
    """What Django refuses to read (a body over DATA_UPLOAD_MAX_MEMORY_SIZE, more fields or
    files than allowed, a malformed multipart body): the client's fault, never a 500."""
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return Response(
            error_body(
                "too_large",
                "The request body is too large.",
                {"max_bytes": limit} if limit is not None else None,
            ),
            status=413,
        )
    if isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        return Response(
            error_body(
                "too_many_fields",
                "The request has too many fields or files.",
                {
                    "max_fields": settings.DATA_UPLOAD_MAX_NUMBER_FIELDS,
                    "max_files": settings.DATA_UPLOAD_MAX_NUMBER_FILES,
                },
            ),
            status=400,
        )
    return Response(error_body("bad_request", "The request cannot be read."), status=400)


def exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        response = Response(error_body(exc.code, exc.message, exc.extra), status=exc.status)
        retry_after = getattr(exc, "retry_after", None)
        if retry_after:
            response["Retry-After"] = str(retry_after)
        return response
    if isinstance(exc, SuspiciousOperation):
        logger.warning("request refused: %s", exc)
        return _refused_request(exc)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        logger.exception("unhandled error in %s", context.get("view"), exc_info=exc)
        return Response(
            error_body("server_error", "Something went wrong on the server; it has been logged."),
            status=500,
        )
    if isinstance(exc, exceptions.ValidationError):
        body = error_body("invalid", "The request is not valid.", response.data)
    else:
        detail = response.data.get("detail", "") if isinstance(response.data, dict) else ""
        code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        body = error_body(code if isinstance(code, str) else "error", str(detail) or str(exc))
    response.data = body
    return response
