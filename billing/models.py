from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from billing.ids import new_grant_id, new_hold_id
from core.append_only import AppendOnly
from orgs.models import AuditEntry, Organization


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


# --- The credit ledger ------------------------------------------------------------------------


class CreditBalance(models.Model):
    """The org's posted balance, updated in the same transaction as every ledger entry.

    Its row is also the lock that serializes every credit write of one org.
    """

    org = models.OneToOneField(Organization, on_delete=models.PROTECT, related_name="credit_balance")
    posted = models.DecimalField(max_digits=20, decimal_places=6, default=0)
    # The part of a negative balance that is billable overage (billed through Stripe's meter), not
    # yet settled. Only this part is ever settled; the rest of a debt is paid by the next credits.
    billed_debt = models.DecimalField(max_digits=20, decimal_places=6, default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(billed_debt__gte=0), name="credit_balance_billed_debt_positive"
            ),
        ]

    def __str__(self):
        return f"{self.posted} credits for {self.org_id}"


class GrantType(models.TextChoices):
    BONUS = "bonus"
    PROMOTIONAL = "promotional"
    PURCHASE = "purchase"
    ADJUSTMENT = "adjustment"
    ALLOWANCE = "allowance"


class CreditGrant(models.Model):
    public_id = models.CharField(max_length=32, unique=True, default=new_grant_id, editable=False)
    org = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="credit_grants")
    grant_type = models.CharField(max_length=16, choices=GrantType.choices)
    amount = models.DecimalField(max_digits=20, decimal_places=6)
    # What debits have not drawn yet; debits draw from the grants that expire soonest.
    remaining = models.DecimalField(max_digits=20, decimal_places=6)
    expires_at = models.DateTimeField(null=True, blank=True)
    # Set when the expiry entry took the remaining credits out of the balance.
    expired_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True)
    # The product that granted through the API; its idempotency key is scoped to (product, org).
    product = models.ForeignKey("orgs.Product", null=True, blank=True, on_delete=models.PROTECT)
    idempotency_key = models.CharField(max_length=255, blank=True)
    request_fingerprint = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["org", "product", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="credit_grant_idempotency_unique",
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="credit_grant_amount_positive"),
            models.CheckConstraint(
                condition=Q(remaining__gte=0) & Q(remaining__lte=models.F("amount")),
                name="credit_grant_remaining_in_range",
            ),
        ]
        indexes = [
            models.Index(
                fields=["org", "expires_at"], condition=Q(remaining__gt=0), name="credit_grant_live_idx"
            ),
            models.Index(fields=["expires_at"], condition=Q(remaining__gt=0), name="credit_grant_expiry_idx"),
        ]

    def __str__(self):
        return f"{self.amount} {self.grant_type} credits for {self.org_id}"


class EntryType(models.TextChoices):
    GRANT = "grant"
    DEBIT = "debit"
    EXPIRY = "expiry"
    SETTLEMENT = "settlement"


class LedgerEntry(AppendOnly, models.Model):
    """Append-only. `amount` is signed: grants and settlements add, debits and expiries take."""

    org = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="ledger_entries")
    entry_type = models.CharField(max_length=16, choices=EntryType.choices)
    amount = models.DecimalField(max_digits=20, decimal_places=6)
    # For debits: the part of the cost covered by credits and the uncovered overage part.
    covered = models.DecimalField(max_digits=20, decimal_places=6, default=0)
    overage = models.DecimalField(max_digits=20, decimal_places=6, default=0)
    grant = models.ForeignKey(CreditGrant, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    balance_after = models.DecimalField(max_digits=20, decimal_places=6)
    # What caused it: a usage batch, a hold, a claim, a staff action.
    reference = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "ledger entries"
        indexes = [models.Index(fields=["org", "-id"], name="ledger_org_idx")]

    def __str__(self):
        return f"{self.entry_type} {self.amount} for {self.org_id}"


# --- Holds: reservations outside the ledger ----------------------------------------------------


class HoldState(models.TextChoices):
    ACTIVE = "active"
    COMMITTED = "committed"
    RELEASED = "released"


class Hold(models.Model):
    public_id = models.CharField(max_length=32, unique=True, default=new_hold_id, editable=False)
    org = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="holds")
    product = models.ForeignKey("orgs.Product", on_delete=models.PROTECT)
    metric = models.ForeignKey(Metric, on_delete=models.PROTECT)
    user_id = models.CharField(max_length=128)
    quantity = models.DecimalField(max_digits=20, decimal_places=6)
    cost = models.DecimalField(max_digits=20, decimal_places=6)
    idempotency_key = models.CharField(max_length=255)
    request_fingerprint = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=HoldState.choices, default=HoldState.ACTIVE)
    # Past this instant an active hold stops counting against the balance, with no task running.
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # The usage event that committed it (the product's event_id).
    event_id = models.CharField(max_length=128, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["product", "org", "idempotency_key"], name="hold_idempotency_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["org", "expires_at"], condition=Q(state="active"), name="hold_active_idx"),
        ]

    def __str__(self):
        return self.public_id


# --- Monthly allowance claims --------------------------------------------------------------------


class ClaimStatus(models.TextChoices):
    GRANTED = "granted"
    FAILED = "failed"


class AllowanceClaim(models.Model):
    """The atomic claim per (org, month, plan): its unique row means the plan's allowance for the month
    was granted once. An org's first claim of a month grants the plan's credits; a claim for a richer
    plan later that month (an upgrade) tops the month up to that plan's amount; a poorer one adds
    nothing. So the credits of a month's granted claims add up to the most any of its plans gives."""

    org = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="allowance_claims")
    month = models.DateField(help_text="The first day of the UTC month.")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT)
    status = models.CharField(max_length=16, choices=ClaimStatus.choices)
    grant = models.ForeignKey(CreditGrant, null=True, blank=True, on_delete=models.PROTECT)
    credits = models.DecimalField(
        max_digits=20, decimal_places=6, default=0, help_text="What this claim granted (a top-up may be 0)."
    )
    attempts = models.PositiveIntegerField(default=1)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-month", "org"]
        constraints = [
            models.UniqueConstraint(fields=["org", "month", "plan"], name="allowance_claim_unique"),
        ]

    def __str__(self):
        return f"{self.plan} allowance {self.month:%Y-%m} for {self.org_id}: {self.status}"


class LedgerDrift(models.Model):
    """Found by check_ledger_consistency: the balance row and the ledger disagree for an org."""

    org = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="ledger_drifts")
    found_at = models.DateTimeField(auto_now_add=True)
    posted = models.DecimalField(max_digits=20, decimal_places=6)
    ledger_sum = models.DecimalField(max_digits=20, decimal_places=6)
    grants_remaining = models.DecimalField(max_digits=20, decimal_places=6)

    class Meta:
        ordering = ["-found_at"]

    def __str__(self):
        return f"drift for {self.org_id}: posted {self.posted}, ledger {self.ledger_sum}"


# --- Stripe: catalog, checkout, invoices, payment failures ----------------------------------------


class StripeMeter(models.Model):
    """The billing meter Stripe counts overage credits on (sync_stripe_catalog creates it)."""

    event_name = models.CharField(max_length=100, unique=True)
    stripe_id = models.CharField(max_length=255, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.event_name} ({self.stripe_id})"


class CheckoutStatus(models.TextChoices):
    CREATING = "creating"
    OPEN = "open"
    COMPLETE = "complete"
    EXPIRED = "expired"


class CheckoutSession(models.Model):
    """A Stripe Checkout session this service started for an org (subscription mode)."""

    org = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="checkout_sessions")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT)
    user_id = models.CharField(max_length=128, help_text="The member who started it.")
    status = models.CharField(max_length=16, choices=CheckoutStatus.choices, default=CheckoutStatus.CREATING)
    stripe_id = models.CharField(max_length=255, blank=True, db_index=True)
    url = models.URLField(max_length=2000, blank=True)
    subscription_id = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["org"], condition=Q(status="open"), name="checkout_open_idx")]

    def __str__(self):
        return self.stripe_id or f"checkout #{self.pk}"


class InvoiceKind(models.TextChoices):
    PLAN = "plan"
    METERED = "metered"


class InvoiceRecord(models.Model):
    """An org's Stripe invoice as billing classifies it: its kind is fixed the first time it is seen."""

    invoice_id = models.CharField(max_length=255, unique=True)
    org = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="invoice_records")
    kind = models.CharField(max_length=8, choices=InvoiceKind.choices)
    subscription_id = models.CharField(max_length=255, blank=True)
    first_seen_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-first_seen_at"]

    def __str__(self):
        return f"{self.invoice_id} ({self.kind})"


class FailureResolution(models.TextChoices):
    PAID = "paid"
    VOID = "void"
    UNCOLLECTIBLE = "uncollectible"


class PaymentFailure(models.Model):
    """One failed Stripe invoice. Open while the invoice is unpaid; payment_status derives from these."""

    invoice_id = models.CharField(max_length=255, unique=True)
    org = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="payment_failures")
    kind = models.CharField(max_length=8, choices=InvoiceKind.choices)
    subscription_id = models.CharField(max_length=255, blank=True)
    # The `created` time of the first failure event seen for this invoice.
    first_failed_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=16, choices=FailureResolution.choices, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-first_failed_at"]
        indexes = [
            models.Index(
                fields=["org"], condition=Q(resolved_at__isnull=True), name="payment_failure_open_idx"
            ),
        ]

    def __str__(self):
        state = self.resolution or "open"
        return f"{self.kind} failure {self.invoice_id} ({state})"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


class StripeEventProblem(models.Model):
    """A webhook event that can never be processed (bad input): recorded for staff, not retried."""

    event_id = models.CharField(max_length=255, db_index=True)
    event_type = models.CharField(max_length=100)
    problem = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.event_type} {self.event_id}: {self.problem[:60]}"


class RejectedWebhook(AuditEntry):
    """The security entries left by rejected webhook deliveries (bad or missing signature)."""

    class Meta:
        proxy = True
        verbose_name = "rejected webhook"
