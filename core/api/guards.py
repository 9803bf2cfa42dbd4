"""Hostile characters stopped before routing: no view, query or database ever sees them.

A path holding a control character (NUL included), a lone surrogate or bytes that are not UTF-8
names nothing: `404 not_found` in the API's error shape. A query string holding one is
`400 invalid_request` naming the parameter (never echoing the value).
"""

import re
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from core.api.errors import error_body

_HOSTILE = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


# Django keeps bytes that are not UTF-8 (a surrogate's encoding included) percent-encoded in the
# decoded path: such a sequence there means the client sent broken text.
_BROKEN_UTF8 = re.compile("%[89A-Fa-f][0-9A-Fa-f]")


def _path_is_hostile(request: HttpRequest) -> bool:
    path = request.path_info
    return _HOSTILE.search(path) is not None or _BROKEN_UTF8.search(path) is not None


def _hostile_parameter(request: HttpRequest) -> str | None:
    for key, values in request.GET.lists():
        if _HOSTILE.search(key):
            return "a parameter name"
        if any(_HOSTILE.search(value) for value in values):
            return key
    return None


class HostileInputMiddleware:
    """Rejects control characters, NUL and broken UTF-8 in the path (404) and query (400)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _path_is_hostile(request):
            return JsonResponse(error_body("not_found", "No such resource."), status=404)
        if request.META.get("QUERY_STRING"):
            name = _hostile_parameter(request)
            if name is not None:
                message = "A query parameter may not hold control characters or broken text."
                return JsonResponse(
                    error_body("invalid_request", message, {"fields": {name: [message]}}), status=400
                )
        return self.get_response(request)
