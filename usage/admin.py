"""Usage on the org page (totals by product and metric) and the usage event list."""

from datetime import UTC, datetime, timedelta

from django.contrib import admin, messages
from django.db import DatabaseError
from django.db.models import Q, Sum
from django.db.models.functions import TruncDate
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from billing.models import Metric
from billing.periods import month_of
from core.admin.dates import with_probed_dates
from core.admin.paginators import EstimatedCountPaginator
from core.admin.readonly import ReadOnlyAdmin, ReadOnlyInline
from core.admin.sections import Section, organization_page
from core.display import credits_text
from orgs.models import Organization, Product
from usage.admin_periods import register_closed_periods
from usage.charts import daily_usage_svg
from usage.models import (
    MeterParity,
    MeterReport,
    UsageBucket,
    UsageEvent,
    UsageEventKey,
)
from usage.selectors import monthly_usage, rollup_lag


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


@admin.display(description="Credits per day, this month and last")
def usage_chart(org):
    now = timezone.now()
    today = now.date()
    first = (month_of(now) - timedelta(days=1)).replace(day=1)  # the first day of last month
    rows = (
        UsageBucket.objects.filter(org=org, hour__gte=datetime(first.year, first.month, 1, tzinfo=UTC))
        .annotate(day=TruncDate("hour", tzinfo=UTC))
        .values("day", "product__slug", "metric")
        .annotate(cost=Sum("cost"))
    )
    return daily_usage_svg(
        [{"day": r["day"], "label": f"{r['product__slug']}:{r['metric']}", "cost": r["cost"]} for r in rows],
        days=(today - first).days + 1,
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


@admin.display(description="Usage by calendar month (UTC)")
def usage_by_month(org):
    rows = monthly_usage(org=org, now=timezone.now())
    events = reverse("admin:usage_usageevent_changelist") + f"?org={org.public_id}"
    link = format_html('<p><a href="{}">All usage events of this org →</a></p>', events)
    if not rows:
        return format_html("No usage this month or last. {}", link)
    return format_html(
        "<table><tr><th>month</th><th>product</th><th>metric</th><th>quantity</th><th>credits</th>"
        "<th>overage billed</th></tr>{}</table>{}",
        format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    f"{r['month']:%B %Y}",
                    r["product__slug"],
                    r["metric"],
                    credits_text(r["quantity"]),
                    credits_text(r["cost"]),
                    credits_text(r["billed"]),
                )
                for r in rows
            ),
        ),
        link,
    )


def register_sections() -> None:
    """Called from UsageConfig.ready."""
    organization_page.add(
        Section(
            "usage",
            order=40,
            inlines=(MeterReportInline,),
            fields=(usage_by_month, usage_chart, meter_parity),
            warnings=lag_warnings,
        )
    )
    register_closed_periods()


class EventOrgFilter(admin.SimpleListFilter):
    """By org, from the org page's link (`?org=org_…`) or the search box: never a list of every org."""

    title = "organization"
    parameter_name = "org"

    def lookups(self, request, model_admin):
        chosen = self.value()
        org = Organization.objects.filter(public_id=chosen).first() if chosen else None
        return [(org.public_id, org.name)] if org else []

    def queryset(self, request, queryset):
        return queryset.filter(org__public_id=self.value()) if self.value() else queryset


class EventMetricFilter(admin.SimpleListFilter):
    """By metric, from the catalog (a DISTINCT over millions of events would take seconds)."""

    title = "metric"
    parameter_name = "metric"

    def lookups(self, request, model_admin):
        keys = Metric.objects.order_by("key").values_list("key", flat=True).distinct()
        return [(key, key) for key in keys]

    def queryset(self, request, queryset):
        return queryset.filter(metric=self.value()) if self.value() else queryset


@admin.register(UsageEvent)
class UsageEventAdmin(RollupLagWarning, ReadOnlyAdmin):
    list_display = [
        "occurred_at",
        "org_name",
        "product_slug",
        "metric",
        "user_id",
        "quantity_shown",
        "cost_shown",
        "overage_shown",
        "event",
    ]
    list_display_links = ["occurred_at"]
    list_filter = [EventOrgFilter, "product", EventMetricFilter]
    list_select_related = ["product", "org"]
    date_hierarchy = "occurred_at"
    ordering = ["-occurred_at", "-id"]  # served by usage_event_occurred_idx
    search_fields = ["=event_id", "=org__public_id"]
    search_help_text = "An event id or an org_… id, exactly."
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    change_list_template = "admin/usage/usageevent/change_list.html"

    def get_queryset(self, request):
        return with_probed_dates(super().get_queryset(request))

    @admin.display(description="org", ordering="org__name")
    def org_name(self, event):
        return event.org.name

    @admin.display(description="product")
    def product_slug(self, event):
        return event.product.slug

    @admin.display(description="quantity")
    def quantity_shown(self, event):
        return credits_text(event.quantity)

    @admin.display(description="credits")
    def cost_shown(self, event):
        return credits_text(event.cost)

    @admin.display(description="overage")
    def overage_shown(self, event):
        return credits_text(event.overage)

    @admin.display(description="event id")
    def event(self, event):
        short = event.event_id if len(event.event_id) <= 24 else f"{event.event_id[:21]}…"
        return format_html('<span title="{}">{}</span>', event.event_id, short)

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
