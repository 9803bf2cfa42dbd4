"""Events to products: what changed for an org, signed and delivered to the endpoints products
registered (Standard Webhooks), at least once, with a per-org sequence number."""

from django.db import models
from django.db.models import Q

from core.append_only import AppendOnly
from orgs.ids import new_delivery_id, new_endpoint_id, new_event_id
from orgs.models.base import Organization, Product


class EventType(models.TextChoices):
    """The contract's event types; a product subscribes an endpoint to some of them."""

    ORG_SUSPENDED = "org.suspended"
    ORG_UNSUSPENDED = "org.unsuspended"
    ORG_PAYMENT_STATUS_CHANGED = "org.payment_status_changed"
    ORG_PLAN_CHANGED = "org.plan_changed"
    ORG_DELETED = "org.deleted"
    ORG_RESTORED = "org.restored"
    MEMBER_UPSERTED = "member.upserted"
    MEMBER_REMOVED = "member.removed"
    CREDITS_LOW = "credits.low"
    CREDITS_EXHAUSTED = "credits.exhausted"
    SPEND_CAP_NEAR = "spend_cap.near"


# Sent only to the products that have called about the org (ProductOrg): a membership is that
# product's business only if the org is.
MEMBER_EVENT_TYPES = frozenset({EventType.MEMBER_UPSERTED, EventType.MEMBER_REMOVED})


class EventEndpoint(models.Model):
    """A URL a product receives events at, for the event types it chose, signed with its secret."""

    public_id = models.CharField(max_length=32, unique=True, default=new_endpoint_id, editable=False)
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="event_endpoints")
    url = models.CharField(max_length=2048)
    event_types = models.JSONField(default=list)
    description = models.CharField(max_length=500, blank=True)
    # `whsec_` + base64 of 24 random bytes (Standard Webhooks). Kept in clear: signing needs it.
    secret = models.CharField(max_length=100, editable=False)
    # After a rotation the old secret also signs, alongside, until it expires (24 hours).
    previous_secret = models.CharField(max_length=100, blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # Failing for three days in a row disables an endpoint: nothing more is sent to it.
    failing_since = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("replay_event_delivery", "Can replay an event delivery to a product")]

    def __str__(self) -> str:
        return f"{self.product} → {self.url}"

    @property
    def is_active(self) -> bool:
        return self.deleted_at is None and self.disabled_at is None


class OutgoingEvent(models.Model):
    """One change an org went through, written in the transaction that made it."""

    public_id = models.CharField(max_length=32, unique=True, default=new_event_id, editable=False)
    org = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="outgoing_events")
    event_type = models.CharField(max_length=40, choices=EventType.choices)
    # Increases per org in commit order (EventSequence), so a receiver can drop a stale event.
    sequence = models.BigIntegerField()
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["org", "sequence"], name="outgoing_event_org_sequence")
        ]

    def __str__(self) -> str:
        return f"{self.event_type} #{self.sequence} ({self.public_id})"


class EventSequence(models.Model):
    """The last sequence number given to an org's events; its row lock orders them."""

    org = models.OneToOneField(Organization, primary_key=True, on_delete=models.PROTECT)
    last = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.org_id}: {self.last}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # given up after three days, or its endpoint was disabled or deleted


class EventDelivery(models.Model):
    """One event to one endpoint: the outbox row of that HTTP call, retried until a 2xx."""

    public_id = models.CharField(max_length=32, unique=True, default=new_delivery_id, editable=False)
    event = models.ForeignKey(OutgoingEvent, on_delete=models.PROTECT, related_name="deliveries")
    endpoint = models.ForeignKey(EventEndpoint, on_delete=models.PROTECT, related_name="deliveries")
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    # Set when a product or staff asked for it again: it is then tried even on a disabled endpoint,
    # and a 2xx there enables the endpoint again.
    retried_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "event deliveries"
        indexes = [
            models.Index(
                fields=["next_attempt_at"], condition=Q(status="pending"), name="event_delivery_due_idx"
            ),
            models.Index(fields=["endpoint", "-id"], name="event_delivery_endpoint_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} ({self.status})"


class DeliveryAttempt(AppendOnly, models.Model):
    """Every attempt of a delivery: when, the answer's status, latency and first bytes, or the error."""

    delivery = models.ForeignKey(EventDelivery, on_delete=models.PROTECT, related_name="attempt_log")
    attempted_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    response_excerpt = models.CharField(max_length=500, blank=True)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-attempted_at", "-id"]

    def __str__(self) -> str:
        return f"{self.attempted_at:%Y-%m-%d %H:%M:%S} {self.status_code or self.error[:40]}"


class ProductOrg(models.Model):
    """An org a product has called about (a write through the API): it receives member.* events."""

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    org = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    first_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "product"], name="product_org_unique")]

    def __str__(self) -> str:
        return f"{self.product_id} ~ {self.org_id}"
