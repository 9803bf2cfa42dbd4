"""Stripe as billing sees it: the meter, checkout sessions, invoices, payment failures, event problems."""

from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from billing.models.accounts import Plan
from orgs.models import AuditEntry, Organization

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
