"""Prepaid credit purchases: the catalog's top-up terms and each purchase paid through Stripe."""

from django.db import models

from billing.models.credits import CreditGrant
from orgs.models import Organization


class TopUpTerms(models.Model):
    """The catalog's `[topups]` section (one row, written by load_catalog): the price of a credit
    bought ahead and the bounds of one purchase."""

    cents_per_credit = models.DecimalField(max_digits=20, decimal_places=6)
    min_credits = models.DecimalField(max_digits=20, decimal_places=6)
    max_credits = models.DecimalField(max_digits=20, decimal_places=6)
    currency = models.CharField(max_length=3, default="usd")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "top-up terms"

    def __str__(self):
        return f"{self.cents_per_credit}¢ per credit, {self.min_credits}–{self.max_credits}"


class PurchaseStatus(models.TextChoices):
    OPEN = "open"  # the Checkout session is open
    PAID = "paid"  # Stripe said the payment succeeded: the grant is written
    REFUNDED = "refunded"  # refunded in full or in part (see refunded_cents)
    FAILED = "failed"  # an automatic top-up Stripe refused (no saved card, declined)


class CreditPurchase(models.Model):
    """Credits an org buys ahead, through a Stripe Checkout session in payment mode. The `purchase`
    grant is written once, when Stripe says the payment succeeded; a refund claws back what is unspent
    and records the rest as owed."""

    org = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="credit_purchases")
    credits = models.DecimalField(max_digits=20, decimal_places=6)
    amount_cents = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    user_id = models.CharField(max_length=128)
    automatic = models.BooleanField(default=False, help_text="An automatic top-up (off-session payment).")
    error = models.TextField(blank=True)
    idempotency_key = models.CharField(max_length=255)
    status = models.CharField(max_length=16, choices=PurchaseStatus.choices, default=PurchaseStatus.OPEN)
    stripe_session_id = models.CharField(max_length=255, blank=True, db_index=True)
    url = models.URLField(max_length=2000, blank=True)
    payment_intent_id = models.CharField(max_length=255, blank=True, db_index=True)
    grant = models.OneToOneField(
        CreditGrant, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    paid_at = models.DateTimeField(null=True, blank=True)
    refunded_cents = models.BigIntegerField(default=0)
    clawed_back = models.DecimalField(max_digits=20, decimal_places=6, default=0)
    owed = models.DecimalField(
        max_digits=20, decimal_places=6, default=0, help_text="Refunded credits already spent: owed."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["org", "idempotency_key"], name="credit_purchase_idempotency_key"
            ),
        ]

    def __str__(self):
        return f"{self.credits} credits ({self.status})"
