import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from simple_history.models import HistoricalRecords

from core.requests import request_id_var

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class RequestIdMiddleware:
    """Gives every request an id (the caller's `X-Request-ID` when sane), for logs and the audit."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.headers.get("X-Request-ID", "")
        request_id = given if _SAFE_REQUEST_ID.match(given) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response


class StaffHistoryMiddleware:
    """Lets simple-history name the staff user behind an admin change.

    Only in the admin: on the API the authenticated principal is a product, not a user (the audit
    log names it).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith("/admin/"):
            return self.get_response(request)
        HistoricalRecords.context.request = request
        try:
            return self.get_response(request)
        finally:
            del HistoricalRecords.context.request
