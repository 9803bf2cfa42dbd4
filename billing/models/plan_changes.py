"""Plan changes an org (or staff) asked for: performed at Stripe through the outbox."""

from django.db import models
from django.db.models import Q

from billing.models.accounts import Plan
from orgs.models import Organization


class PlanChangeKind(models.TextChoices):
    UPGRADE = "upgrade"  # at once, the difference invoiced now (proration, always_invoice)
    DOWNGRADE = "downgrade"  # at the period end, through a subscription schedule
    CANCEL = "cancel"  # to the default plan: cancel_at_period_end
    REVERT = "revert"  # back to the plan in force: a pending downgrade or cancel undone


class PlanChangeStatus(models.TextChoices):
    PENDING = "pending"  # asked; the plan here has not changed yet (Stripe has not said so)
    DONE = "done"  # Stripe's subscription gives the plan now
    SUPERSEDED = "superseded"  # a later change of the org replaced it before it was done
    FAILED = "failed"  # Stripe refused the write


class PlanChange(models.Model):
    """One requested change of an org's plan. The plan itself changes only in sync_plan, from the
    subscription Stripe lists; this row says what was asked and until when it is pending."""

    org = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="plan_changes")
    from_plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+")
    to_plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16, choices=PlanChangeKind.choices)
    status = models.CharField(
        max_length=16, choices=PlanChangeStatus.choices, default=PlanChangeStatus.PENDING
    )
    subscription_id = models.CharField(max_length=255)
    effective_at = models.DateTimeField(help_text="When the new plan takes effect (now, or the period end).")
    user_id = models.CharField(
        max_length=128, blank=True, help_text="The member who asked (empty for staff)."
    )
    reason = models.TextField(blank=True, help_text="Staff's reason, when staff asked.")
    idempotency_key = models.CharField(max_length=255)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["org", "idempotency_key"], name="plan_change_idempotency_key"),
        ]
        indexes = [
            models.Index(fields=["org"], condition=Q(status="pending"), name="plan_change_pending_idx")
        ]

    def __str__(self):
        return f"{self.kind} to {self.to_plan_id} ({self.status})"
