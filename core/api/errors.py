"""One exception handler: every failure leaves the API as `{"error": {code, message, details}}`."""

import logging
import math
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response

from core.api.parsing import PayloadTooLarge
from core.errors import ServiceError

logger = logging.getLogger(__name__)


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _flatten_messages(detail: Any) -> Any:
    if isinstance(detail, dict):
        return {key: _flatten_messages(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_flatten_messages(item) for item in detail]
    return str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    if isinstance(exc, ServiceError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status)
    if isinstance(exc, Http404):
        return Response(error_body("not_found", "Not found."), status=404)
    if isinstance(exc, exceptions.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        return Response(
            error_body("invalid_request", "The request is invalid.", {"fields": _flatten_messages(fields)}),
            status=400,
        )
    if isinstance(exc, exceptions.ParseError):
        return Response(error_body("invalid_request", str(exc.detail)), status=400)
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        message = (
            str(exc.detail)
            if isinstance(exc, exceptions.AuthenticationFailed)
            else ("This request needs `Authorization: Api-Key <key>`.")
        )
        return Response(
            error_body("unauthenticated", message), status=401, headers={"WWW-Authenticate": "Api-Key"}
        )
    if isinstance(exc, exceptions.Throttled):
        wait = math.ceil(getattr(exc, "wait", None) or 1)
        return Response(
            error_body(
                "rate_limited",
                f"Too many requests for this API key; retry in {wait} s.",
                {"retry_after": wait},
            ),
            status=429,
            headers={"Retry-After": str(wait)},
        )
    if isinstance(exc, exceptions.APIException):
        return Response(error_body(exc.default_code, str(exc.detail)), status=exc.status_code)
    return None


def api_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler404 for paths that reach no view: the API's error shape under /api/."""
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("not_found", "No such endpoint."), status=404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def api_server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("internal_error", "Something went wrong on our side."), status=500)
    from django.views.defaults import server_error

    return server_error(request)
