from django.core.exceptions import PermissionDenied
from simple_history.admin import SimpleHistoryAdmin


class HistoryAdmin(SimpleHistoryAdmin):
    """simple-history's history pages, for reading only.

    Its revert form saves a historical version straight through the ModelAdmin, around the
    services and the audit; SIMPLE_HISTORY_REVERT_DISABLED only hides that button, so a POST is
    refused here.
    """

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if request.method != "GET":
            raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)
