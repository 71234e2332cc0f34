"""One error body for every API error:

    {"error": {"code": "validation_error", "message": "…", "fields": {"name": ["…"]}}}

``fields`` appears only for validation errors; ``extra`` only when a domain
error carries data (a balance, a retry time…).
"""

import logging

from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from cohorta.errors import ApplicationError
from cohorta.jobs.errors import IllegalJobTransition

logger = logging.getLogger(__name__)

_CODES = {
    exceptions.ParseError: "malformed_request",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
}


def error_body(code: str, message: str, **more) -> dict:
    error = {"code": code, "message": message}
    error.update({key: value for key, value in more.items() if value})
    return {"error": error}


def _flatten_message(detail) -> str:
    if isinstance(detail, list) and detail:
        return _flatten_message(detail[0])
    if isinstance(detail, dict) and detail:
        return _flatten_message(next(iter(detail.values())))
    return str(detail)


def exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.code, exc.message, extra=exc.extra), status=exc.status_code)
    if isinstance(exc, IllegalJobTransition):
        return Response(
            error_body("illegal_transition", f"This job is {exc.current} and cannot become {exc.target}."),
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # unexpected: Django's handler500 renders the JSON body

    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = error_body("validation_error", "Some fields are invalid.", fields=detail)
    else:
        code = next((c for cls, c in _CODES.items() if isinstance(exc, cls)), "error")
        message = _flatten_message(exc.detail)
        if isinstance(exc, exceptions.ParseError):
            message = f"The request body could not be parsed: {message}"
        response.data = error_body(code, message)
    return response


def json_not_found(request, exception=None) -> JsonResponse:
    return JsonResponse(error_body("not_found", "Not found."), status=404)


def json_server_error(request) -> JsonResponse:
    return JsonResponse(
        error_body("server_error", "Something went wrong on our side. It has been logged; please try again."),
        status=500,
    )
