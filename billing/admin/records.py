"""Read-only lists staff look things up in: plans, metrics, grants, ledger, holds, claims, payments."""

from django.contrib import admin

from billing.models import (
    AllowanceClaim,
    CheckoutSession,
    CreditGrant,
    Hold,
    InvoiceRecord,
    LedgerDrift,
    LedgerEntry,
    Metric,
    MetricPrice,
    PaymentFailure,
    Plan,
    RejectedWebhook,
    RejectedWebhookTally,
    StripeEventProblem,
)
from core.admin.history import HistoryAdmin
from core.admin.paginators import EstimatedCountPaginator
from core.admin.readonly import ReadOnlyAdmin


@admin.register(Plan)
class PlanAdmin(ReadOnlyAdmin, HistoryAdmin):
    """Plans come from the catalog (load_catalog): read here, changed there."""

    list_display = [
        "name",
        "rank",
        "is_default",
        "monthly_credits",
        "seat_limit",
        "overage_allowed",
        "monthly_price_cents",
    ]


class MetricPriceInline(admin.TabularInline):
    """Price versions: a changed price is a new version from the catalog, never an edit in place
    (recorded usage keeps the price it was costed with)."""

    model = MetricPrice

    fields = ("credits_per_unit", "effective_from", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Metric)
class MetricAdmin(ReadOnlyAdmin, HistoryAdmin):
    list_display = ["key", "product", "unit", "description"]
    list_filter = ["product"]
    inlines = [MetricPriceInline]


@admin.register(CreditGrant)
class CreditGrantAdmin(ReadOnlyAdmin):
    list_display = [
        "public_id",
        "org",
        "grant_type",
        "amount",
        "remaining",
        "expires_at",
        "created_at",
        "product",
    ]
    list_filter = ["grant_type"]
    list_select_related = ["org", "product"]
    search_fields = ["=public_id", "=org__public_id"]
    show_full_result_count = False


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    paginator = EstimatedCountPaginator
    list_display = [
        "created_at",
        "org",
        "entry_type",
        "amount",
        "covered",
        "overage",
        "balance_after",
        "reference",
    ]
    list_filter = ["entry_type"]
    list_select_related = ["org"]
    search_fields = ["=org__public_id", "=reference"]
    show_full_result_count = False


@admin.register(Hold)
class HoldAdmin(ReadOnlyAdmin):
    list_display = ["public_id", "org", "product", "metric", "cost", "state", "expires_at", "event_id"]
    list_filter = ["state", "product"]
    list_select_related = ["org", "product", "metric"]
    search_fields = ["=public_id", "=org__public_id"]
    show_full_result_count = False


@admin.register(AllowanceClaim)
class AllowanceClaimAdmin(ReadOnlyAdmin):
    list_display = ["org", "month", "plan", "status", "attempts", "last_error", "updated_at"]
    list_filter = ["status", "month"]
    list_select_related = ["org", "plan"]
    search_fields = ["=org__public_id"]


@admin.register(LedgerDrift)
class LedgerDriftAdmin(ReadOnlyAdmin):
    list_display = ["found_at", "org", "posted", "ledger_sum", "grants_remaining"]
    list_select_related = ["org"]


@admin.register(PaymentFailure)
class PaymentFailureAdmin(ReadOnlyAdmin, HistoryAdmin):
    list_display = ["invoice_id", "org", "kind", "first_failed_at", "resolved_at", "resolution"]
    list_filter = ["kind", "resolution"]
    list_select_related = ["org"]
    search_fields = ["=invoice_id", "=org__public_id", "=subscription_id"]


@admin.register(InvoiceRecord)
class InvoiceRecordAdmin(ReadOnlyAdmin):
    list_display = ["invoice_id", "org", "kind", "subscription_id", "first_seen_at"]
    list_filter = ["kind"]
    list_select_related = ["org"]
    search_fields = ["=invoice_id", "=org__public_id"]


@admin.register(CheckoutSession)
class CheckoutSessionAdmin(ReadOnlyAdmin):
    list_display = ["stripe_id", "org", "plan", "status", "user_id", "created_at"]
    list_filter = ["status", "plan"]
    list_select_related = ["org", "plan"]
    search_fields = ["=stripe_id", "=org__public_id"]


@admin.register(StripeEventProblem)
class StripeEventProblemAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "event_type", "event_id", "problem"]
    list_filter = ["event_type"]
    search_fields = ["=event_id"]


@admin.register(RejectedWebhook)
class RejectedWebhookAdmin(ReadOnlyAdmin):
    """Security entries left by rejected Stripe webhook deliveries: bad or missing signatures."""

    list_display = ["created_at", "reason", "source_ip", "endpoint"]
    date_hierarchy = "created_at"

    def get_queryset(self, request):
        return super().get_queryset(request).filter(category="security", action="webhook.rejected")

    @admin.display(description="from")
    def source_ip(self, entry):
        return (entry.after or {}).get("ip", "")

    @admin.display
    def endpoint(self, entry):
        return (entry.after or {}).get("endpoint", "")


@admin.register(RejectedWebhookTally)
class RejectedWebhookTallyAdmin(ReadOnlyAdmin):
    """Every rejected Stripe webhook post, counted per source address and minute."""

    list_display = ["minute", "source", "count", "last_reason", "endpoint"]
    date_hierarchy = "minute"
    search_fields = ["=source"]
    ordering = ["-minute"]
