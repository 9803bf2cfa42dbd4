"""Plans, billing accounts and the credit policy (metrics and their versioned prices)."""

from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from orgs.models import Organization


class PlanQuerySet(models.QuerySet["Plan"]):
    def paid(self) -> "PlanQuerySet":
        """The plans an org subscribes to through Stripe: those with a monthly price."""
        return self.filter(monthly_price_cents__gt=0)

    def default(self) -> "Plan":
        """The plan of an org without a subscription (and the allowance plan while a payment is due)."""
        return self.get(is_default=True)


class Plan(models.Model):
    """One row per plan of the catalog (load_catalog): the allowlist of plan names is this table, and
    every plan an org, a checkout or a claim refers to is a foreign key to it."""

    name = models.SlugField(max_length=32, unique=True)
    # "The highest plan found" among an org's subscriptions is the one of highest rank.
    rank = models.IntegerField(unique=True)
    # The plan an org without a subscription is on (one plan at most: plan_one_default).
    is_default = models.BooleanField(default=False)
    monthly_credits = models.DecimalField(max_digits=20, decimal_places=6, default=0)
    # None means unlimited seats.
    seat_limit = models.PositiveIntegerField(null=True, blank=True)
    overage_allowed = models.BooleanField(default=False)
    # Stripe money: integer minor units of `currency`.
    monthly_price_cents = models.PositiveIntegerField(default=0)
    currency = models.CharField(max_length=3, default="usd")
    # Price of one overage credit, in cents (fractional cents allowed: Stripe's unit_amount_decimal).
    overage_cents_per_credit = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    # Set by sync_stripe_catalog: the Stripe objects that bill this plan.
    stripe_product_id = models.CharField(max_length=255, blank=True)
    stripe_price_id = models.CharField(max_length=255, blank=True, db_index=True)
    stripe_overage_price_id = models.CharField(max_length=255, blank=True)
    history = HistoricalRecords()

    objects = PlanQuerySet.as_manager()

    class Meta:
        ordering = ["rank"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="plan_one_default"
            ),
        ]

    def __str__(self):
        return self.name


class PaymentStatus(models.TextChoices):
    OK = "ok"
    PAST_DUE = "past_due"
    BLOCKED = "blocked"


class SuspensionSource(models.TextChoices):
    AUTO = "auto"
    MANUAL = "manual"


class BillingAccount(models.Model):
    """One per org: its plan, payment state and suspension."""

    org = models.OneToOneField(Organization, on_delete=models.PROTECT, related_name="billing_account")
    # Derived from the org's Stripe subscriptions; never set from metadata.
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="accounts")
    # Derived from the open payment failures.
    payment_status = models.CharField(max_length=16, choices=PaymentStatus.choices, default=PaymentStatus.OK)
    overdue_since = models.DateTimeField(null=True, blank=True)
    suspended_at = models.DateTimeField(null=True, blank=True)
    suspension_reason = models.TextField(blank=True)
    suspension_source = models.CharField(max_length=8, choices=SuspensionSource.choices, blank=True)
    # The first invoice paid with amount_paid > 0; null means the org never paid.
    first_paid_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        permissions = [
            ("grant_credits", "Can grant credits up to the Support limit"),
            ("grant_unlimited_credits", "Can grant credits beyond the Support limit"),
            ("suspend_organization", "Can suspend an organization and lift its suspension"),
            ("resync_from_stripe", "Can resync an organization from Stripe"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(suspended_at__isnull=True, suspension_source="")
                    | Q(suspended_at__isnull=False, suspension_source__in=SuspensionSource.values)
                ),
                name="billing_account_suspension_has_source",
            ),
        ]

    def __str__(self):
        return f"Billing account of {self.org_id}"

    @property
    def suspended(self) -> bool:
        return self.suspended_at is not None


# --- Credit policy: what one unit of a product's metric costs, in credits --------------------


class Metric(models.Model):
    """A product's billable metric (e.g. red's `fix_run`); its price is versioned in MetricPrice."""

    product = models.ForeignKey("orgs.Product", on_delete=models.PROTECT, related_name="metrics")
    key = models.SlugField(max_length=64)
    unit = models.CharField(max_length=64)
    description = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["product", "key"]
        constraints = [models.UniqueConstraint(fields=["product", "key"], name="metric_product_key_unique")]

    def __str__(self):
        return f"{self.product_id}:{self.key}"


class MetricPrice(models.Model):
    """One price version: in force from `effective_from` until the next version's."""

    metric = models.ForeignKey(Metric, on_delete=models.PROTECT, related_name="prices")
    credits_per_unit = models.DecimalField(max_digits=20, decimal_places=6)
    effective_from = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["metric", "-effective_from"]
        constraints = [
            models.UniqueConstraint(fields=["metric", "effective_from"], name="metric_price_version_unique"),
            models.CheckConstraint(condition=Q(credits_per_unit__gte=0), name="metric_price_not_negative"),
        ]

    def __str__(self):
        return f"{self.metric} = {self.credits_per_unit} from {self.effective_from:%Y-%m-%d %H:%M}"
