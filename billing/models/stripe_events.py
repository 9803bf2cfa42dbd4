"""Stripe events as received: verified and stored by the webhook view, processed once by a task."""

from django.db import models
from django.db.models import Q


class StripeEventStatus(models.TextChoices):
    PENDING = "pending"  # stored, not processed yet (or waiting for its next attempt)
    PROCESSED = "processed"
    FAILED = "failed"  # a permanent failure: kept for staff, who may replay it


class ReceivedStripeEvent(models.Model):
    """One Stripe event, stored once however often Stripe delivers it, and processed at most once.

    The webhook view writes it (and nothing else) before answering 200; the task
    `billing.tasks.process_stripe_event` claims it under a row lock, runs dj-stripe's sync and the
    receivers, and marks it processed in the same transaction. The sweeper requeues what is still
    pending, so a lost broker, a killed worker or a deploy never loses one.
    """

    event_id = models.CharField(max_length=255, unique=True)
    event_type = models.CharField(max_length=250)
    livemode = models.BooleanField(default=False)
    # The verified body, as Stripe sent it (dj-stripe's Event is built from it when processed).
    payload = models.JSONField()
    received_at = models.DateTimeField()
    status = models.CharField(
        max_length=16, choices=StripeEventStatus.choices, default=StripeEventStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    # A pending event is not attempted before this (backoff after a transient failure).
    next_attempt_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    replayed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name = "received Stripe event"
        permissions = [("replay_stripe_event", "Can replay a Stripe event")]
        indexes = [
            # The sweeper's and the admin's question: what is stored and not processed yet.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="stripe_event_pending_idx",
            ),
            models.Index(
                fields=["-received_at"],
                condition=Q(status="failed"),
                name="stripe_event_failed_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id}"


class RejectedWebhookTally(models.Model):
    """Rejected webhook posts (no or a bad signature, an unknown endpoint, no safe JSON) counted per
    source address and minute: however many arrive, one row per source and minute, plus one
    `security` audit entry (the first)."""

    source = models.CharField(max_length=64)
    minute = models.DateTimeField()
    count = models.PositiveIntegerField(default=1)
    last_reason = models.CharField(max_length=100)
    endpoint = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "minute"], name="one_tally_per_source_minute")
        ]
        indexes = [models.Index(fields=["-minute"], name="tally_by_minute")]

    def __str__(self) -> str:
        return f"{self.count} from {self.source} at {self.minute:%Y-%m-%d %H:%M}"
