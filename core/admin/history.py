from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from simple_history.admin import SimpleHistoryAdmin


class HistoryAdmin(SimpleHistoryAdmin):  # type: ignore[misc]  # simple-history ships no types
    """simple-history's history pages, for reading only.

    Its revert form saves a historical version straight through the ModelAdmin, around the
    services and the audit; SIMPLE_HISTORY_REVERT_DISABLED only hides that button, so a POST is
    refused here.
    """

    def history_form_view(
        self,
        request: HttpRequest,
        object_id: str,
        version_id: str,
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        if request.method != "GET":
            raise PermissionDenied
        response: HttpResponse = super().history_form_view(request, object_id, version_id, extra_context)
        return response
