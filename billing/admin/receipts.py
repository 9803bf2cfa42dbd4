"""Decision receipts in the admin: every denial products received, read-only."""

from django.contrib import admin

from billing.models import DenialReceipt
from core.admin.paginators import EstimatedCountPaginator
from core.admin.readonly import ReadOnlyAdmin


@admin.register(DenialReceipt)
class DenialReceiptAdmin(ReadOnlyAdmin):
    list_display = ["minute", "org", "product", "reason", "metric", "count", "last_user_id", "last_at"]
    list_filter = ["reason", "product"]
    list_select_related = ["org", "product"]
    date_hierarchy = "minute"
    search_fields = ["=org__public_id"]
    search_help_text = "An org_… id."
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    ordering = ["-minute", "-id"]

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        return (queryset.filter(org__public_id=term), False) if term else (queryset, False)
