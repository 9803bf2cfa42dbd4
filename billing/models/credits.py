"""The credit ledger: balances, grants, entries, holds, allowance claims, drift records."""

from django.db import models
from django.db.models import Q

from billing.ids import new_grant_id, new_hold_id
from billing.models.accounts import Metric, Plan
from core.append_only import AppendOnly
from orgs.models import Organization

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
    # The spend cap: at most this many billable overage credits a month (null: no cap). Reserves and
    # checks that would pass it are refused; usage reported anyway is recorded and billed.
    monthly_overage_cap = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    # Billable overage debited in `overage_month` (a counter read with the balance: a new month starts
    # it again at 0, whoever reads it first).
    month_overage = models.DecimalField(max_digits=20, decimal_places=6, default=0)
    overage_month = models.DateField(null=True, blank=True)
    # Automatic top-up: when a debit takes the available balance below the threshold, one purchase of
    # `auto_top_up_credits` with the saved card; disarmed until a purchase grant re-arms it.
    auto_top_up_threshold = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    auto_top_up_credits = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    auto_top_up_armed = models.BooleanField(default=True)
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
    ADJUSTMENT = "adjustment"  # credits taken back, e.g. the unspent part of a refunded purchase


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
