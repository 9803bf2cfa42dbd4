from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from orgs.models import Organization


class PlanName(models.TextChoices):
    FREE = "free"
    PRO = "pro"
    TEAM = "team"


# "The highest plan found": team > pro > free.
PLAN_RANK = {PlanName.FREE: 0, PlanName.PRO: 1, PlanName.TEAM: 2}


class Plan(models.Model):
    """One row per allowed plan; its terms come from the catalog (load_catalog)."""

    name = models.CharField(max_length=16, choices=PlanName.choices, unique=True)
    monthly_credits = models.DecimalField(max_digits=20, decimal_places=6, default=0)
    # None means unlimited seats.
    seat_limit = models.PositiveIntegerField(null=True, blank=True)
    overage_allowed = models.BooleanField(default=False)
    # Stripe money: integer minor units of `currency`.
    monthly_price_cents = models.PositiveIntegerField(default=0)
    currency = models.CharField(max_length=3, default="usd")
    # Price of one overage credit, in cents (fractional cents allowed: Stripe's unit_amount_decimal).
    overage_cents_per_credit = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(name__in=PlanName.values), name="plan_name_in_allowlist"),
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
    """One per org: its plan, payment state and suspension (DESIGN.md: Billing account)."""

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
