from django.db import models

from billing.models import MetricPrice
from orgs.models import Organization, Product


class UsageEvent(models.Model):
    """One unit of work a product reported. Its cost is computed once and stored; every total is a
    sum of stored costs."""

    # No index of its own: the unique (product, event_id) index serves every lookup by product.
    product = models.ForeignKey(Product, on_delete=models.PROTECT, db_index=False)
    # The product's idempotency key: unique per product.
    event_id = models.CharField(max_length=128)
    # Indexed through (org, product, occurred_at) below.
    org = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="usage_events", db_index=False
    )
    user_id = models.CharField(max_length=128, blank=True)
    metric = models.CharField(max_length=64)
    # The price version in force at occurred_at. Not indexed: price versions are never deleted, and
    # every index slows the hot insert.
    price = models.ForeignKey(MetricPrice, on_delete=models.PROTECT, db_index=False)
    quantity = models.DecimalField(max_digits=20, decimal_places=6)
    cost = models.DecimalField(max_digits=20, decimal_places=6)
    # The part of the cost no credit covered when it was debited.
    overage = models.DecimalField(max_digits=20, decimal_places=6, default=0)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField()
    properties = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["product", "event_id"], name="usage_event_product_event_unique"),
        ]
        indexes = [models.Index(fields=["org", "product", "occurred_at"], name="usage_event_org_time_idx")]

    def __str__(self):
        return f"{self.product_id}:{self.event_id}"
