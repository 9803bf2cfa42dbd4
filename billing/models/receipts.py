"""Decision receipts: the denials products received from the entitlement check and reserve."""

from django.db import models

from orgs.models import Organization, Product


class DenialReceipt(models.Model):
    """The denials of one (org, product, reason, metric) within one minute: how many, and the last
    user and instant. Written by billing.services.receipts.record_denial, one upsert per denial, so
    a product hammering a suspended org adds to one row a minute instead of one row a call."""

    org = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="denial_receipts")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=32)
    metric = models.CharField(max_length=64)
    minute = models.DateTimeField(help_text="The minute the denials fell in (UTC, seconds zeroed).")
    count = models.PositiveIntegerField(default=1)
    last_user_id = models.CharField(max_length=128)
    last_at = models.DateTimeField()

    class Meta:
        ordering = ["-minute", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["org", "product", "reason", "metric", "minute"], name="denial_receipt_per_minute"
            ),
        ]
        # The org page reads an org's latest receipts.
        indexes = [models.Index(fields=["org", "-minute"], name="denial_receipt_org_latest")]

    def __str__(self):
        return f"{self.reason} ×{self.count} at {self.minute:%Y-%m-%d %H:%M}"
