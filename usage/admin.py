"""Usage on the org page (totals by product and metric) and the usage event list."""

from datetime import timedelta

from django.contrib import admin
from django.db.models import Sum
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from billing.admin.organizations import BillingOrganizationAdmin
from orgs.admin.paginators import EstimatedCountPaginator
from orgs.admin.records import ReadOnlyAdmin
from orgs.models import Organization
from usage.models import UsageEvent

admin.site.unregister(Organization)


@admin.register(Organization)
class UsageOrganizationAdmin(BillingOrganizationAdmin):
    readonly_fields = [*BillingOrganizationAdmin.readonly_fields, "usage_last_30_days"]
    fields = [*BillingOrganizationAdmin.fields, "usage_last_30_days"]

    @admin.display(description="Usage, last 30 days")
    def usage_last_30_days(self, org):
        rows = (
            UsageEvent.objects.filter(org=org, occurred_at__gte=timezone.now() - timedelta(days=30))
            .values("product__slug", "metric")
            .annotate(quantity=Sum("quantity"), cost=Sum("cost"), overage=Sum("overage"))
            .order_by("product__slug", "metric")
        )
        if not rows:
            return "No usage."
        return format_html(
            "<table><tr><th>product</th><th>metric</th><th>quantity</th><th>credits</th><th>overage</th></tr>{}</table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                ((r["product__slug"], r["metric"], r["quantity"], r["cost"], r["overage"]) for r in rows),
            ),
        )


@admin.register(UsageEvent)
class UsageEventAdmin(ReadOnlyAdmin):
    list_display = ["event_id", "product", "org", "metric", "quantity", "cost", "overage", "occurred_at"]
    list_filter = ["product"]
    list_select_related = ["product", "org"]
    search_fields = ["=event_id", "=org__public_id"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
