"""Usage on the org page (totals by product and metric) and the usage event list."""

from datetime import UTC, timedelta

from django.contrib import admin, messages
from django.db import DatabaseError
from django.db.models import Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from core.admin.paginators import EstimatedCountPaginator
from core.admin.readonly import ReadOnlyAdmin, ReadOnlyInline
from core.admin.sections import Section, organization_page
from orgs.models import Product
from usage.charts import daily_usage_svg
from usage.models import MeterParity, MeterReport, UsageBucket, UsageEvent, UsageEventKey
from usage.selectors import rollup_lag


def lag_warnings(request) -> list[str]:
    """A warning while the rollup is behind: the buckets, the reports and the charts are then short
    of the usage waiting."""
    try:
        lag = rollup_lag()
    except DatabaseError:
        return ["The usage rollup's lag could not be measured just now."]
    return [lag.describe()] if lag.lagging else []


class RollupLagWarning:
    """On the pages staff read usage and overage from, the rollup's lag (lag_warnings)."""

    def _warn_if_lagging(self, request) -> None:
        for warning in lag_warnings(request):
            messages.warning(request, warning)

    def changelist_view(self, request, extra_context=None):
        self._warn_if_lagging(request)
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method == "GET":
            self._warn_if_lagging(request)
        return super().change_view(request, object_id, form_url, extra_context)


class MeterReportInline(ReadOnlyInline):
    model = MeterReport
    limit = 20
    verbose_name_plural = "Meter reports (latest 20)"
    fields = (
        "identifier",
        "value",
        "carried",
        "status",
        "created_at",
        "sent_at",
        "attempts",
        "earliest_timestamp",
        "latest_timestamp",
        "invoice_id",
        "last_error",
    )
    readonly_fields = fields
    ordering = ["-created_at", "-id"]


@admin.display(description="Credits per day, last 30 days")
def usage_chart(org):
    today = timezone.now().date()
    rows = (
        UsageBucket.objects.filter(org=org, hour__gte=timezone.now() - timedelta(days=30))
        .annotate(day=TruncDate("hour", tzinfo=UTC))
        .values("day", "product__slug", "metric")
        .annotate(cost=Sum("cost"))
    )
    return daily_usage_svg(
        [{"day": r["day"], "label": f"{r['product__slug']}:{r['metric']}", "cost": r["cost"]} for r in rows],
        days=30,
        today=today,
    )


@admin.display(description="Meter parity (latest check)")
def meter_parity(org):
    check = MeterParity.objects.filter(org=org).first()
    if check is None:
        return "Not checked yet."
    stripe_total = "—" if check.stripe_total is None else check.stripe_total
    return format_html(
        "{} · events {} · buckets {} · reported {} · Stripe {} · {}",
        f"{check.checked_at:%Y-%m-%d %H:%M}",
        check.events_total,
        check.buckets_total,
        check.reported_total,
        stripe_total,
        format_html(
            "<strong style='color:#ba2121'>drift: {}</strong>",
            ", ".join(check.details.get("problems", [])),
        )
        if check.drift
        else "no drift",
    )


@admin.display(description="Usage, last 30 days")
def usage_last_30_days(org):
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


def register_sections() -> None:
    """Called from UsageConfig.ready."""
    organization_page.add(
        Section(
            "usage",
            order=40,
            inlines=(MeterReportInline,),
            fields=(usage_chart, usage_last_30_days, meter_parity),
            warnings=lag_warnings,
        )
    )


@admin.register(UsageEvent)
class UsageEventAdmin(RollupLagWarning, ReadOnlyAdmin):
    list_display = ["event_id", "product", "org", "metric", "quantity", "cost", "overage", "occurred_at"]
    list_filter = ["product"]
    list_select_related = ["product", "org"]
    search_fields = ["=event_id", "=org__public_id"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator

    def get_search_results(self, request, queryset, search_term):
        """An org id, or an event_id found through its keys (the events have no index on event_id:
        each key tells the event's org and instant, which the (org, product, occurred_at) index and
        the partition bounds find)."""
        term = search_term.strip()
        if not term:
            return queryset, False
        if term.startswith("org_"):
            return queryset.filter(org__public_id=term), False
        keys = UsageEventKey.objects.filter(
            product_id__in=Product.objects.values_list("pk", flat=True), event_id=term
        ).values_list("product_id", "org_id", "occurred_at")
        match = Q(pk__in=[])
        for product_id, org_id, occurred_at in keys:
            match |= Q(product_id=product_id, org_id=org_id, occurred_at=occurred_at, event_id=term)
        return queryset.filter(match), False


@admin.register(UsageBucket)
class UsageBucketAdmin(RollupLagWarning, ReadOnlyAdmin):
    list_display = [
        "hour",
        "org",
        "product",
        "metric",
        "quantity",
        "cost",
        "overage",
        "billable_overage",
        "events",
    ]
    list_filter = ["product"]
    list_select_related = ["org", "product"]
    search_fields = ["=org__public_id"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator


@admin.register(MeterReport)
class MeterReportAdmin(RollupLagWarning, ReadOnlyAdmin):
    list_display = ["identifier", "org", "value", "carried", "status", "created_at", "sent_at", "attempts"]
    list_filter = ["status"]
    list_select_related = ["org"]
    search_fields = ["=identifier", "=org__public_id"]


@admin.register(MeterParity)
class MeterParityAdmin(ReadOnlyAdmin):
    list_display = [
        "checked_at",
        "org",
        "events_total",
        "buckets_total",
        "reported_total",
        "stripe_total",
        "drift",
    ]
    list_filter = ["drift"]
    list_select_related = ["org"]
