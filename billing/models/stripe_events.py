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
