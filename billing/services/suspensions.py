"""Suspension: automatic for orgs overdue 3 days or more that never paid; manual by staff.

The job may run at any time, any number of times, concurrently: it only ever moves an account
whose state calls for it, under row locks, skipping rows another run holds. It never touches a
manual suspension.
"""

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from billing.models import BillingAccount, SuspensionSource
from orgs.models import AuditCategory, EventType, Organization
from orgs.services.audit import Actor, record_audit
from orgs.services.events import emit_event

OVERDUE_GRACE = timedelta(days=3)


def suspension_due(*, now: datetime) -> Q:
    """Accounts the rule suspends: a live org, overdue for 3 days or more, that never paid."""
    return Q(
        org__deleted_at__isnull=True,
        overdue_since__isnull=False,
        overdue_since__lte=now - OVERDUE_GRACE,
        first_paid_at__isnull=True,
    )


def _snapshot(account: BillingAccount) -> dict[str, Any]:
    return {
        "suspended_at": account.suspended_at.isoformat() if account.suspended_at else None,
        "source": account.suspension_source,
        "reason": account.suspension_reason,
    }


def _set(
    account: BillingAccount,
    *,
    actor: Actor,
    action: str,
    reason: str,
    suspended_at: datetime | None,
    source: str,
) -> None:
    before = _snapshot(account)
    account.suspended_at, account.suspension_source = suspended_at, source
    account.suspension_reason = reason if suspended_at else ""
    account.save(update_fields=["suspended_at", "suspension_source", "suspension_reason", "updated_at"])
    record_audit(
        actor=actor,
        action=action,
        category=AuditCategory.SUSPENSION,
        org_id=account.org_id,
        before=before,
        after=_snapshot(account),
        reason=reason,
    )
    was_suspended = before["suspended_at"] is not None
    if was_suspended != (suspended_at is not None):
        # Products learn the state and its source; a staff member's reason stays in the audit log.
        emit_event(
            org_id=account.org_id,
            event_type=EventType.ORG_SUSPENDED if suspended_at else EventType.ORG_UNSUSPENDED,
            data={"suspended": suspended_at is not None, "source": source or before["source"]},
        )


def lift_auto_suspension_if_reason_gone(account: BillingAccount, *, actor: Actor, now: datetime) -> bool:
    """Lift an `auto` suspension whose reason has gone (payment made). Call with the account locked."""
    if account.suspension_source != SuspensionSource.AUTO:
        return False
    if BillingAccount.objects.filter(suspension_due(now=now), pk=account.pk).exists():
        return False
    _set(
        account,
        actor=actor,
        action="suspension.lifted",
        reason="The payment is no longer overdue.",
        suspended_at=None,
        source="",
    )
    return True


def reconcile_suspensions(*, now: datetime | None = None) -> dict[str, int]:
    """Suspend (auto) every live org the rule calls for; lift every auto suspension whose reason has
    gone. Idempotent and safe to run concurrently."""
    now = now or timezone.now()
    actor = Actor.system("reconcile_suspensions")
    suspended = lifted = 0
    with transaction.atomic():
        # SKIP LOCKED: an account a webhook or another run holds is left to the next run.
        due = BillingAccount.objects.select_for_update(skip_locked=True).filter(
            suspension_due(now=now), suspended_at__isnull=True
        )
        # In org id order: each change emits an event, whose sequence lock goes in that order.
        for account in due.order_by("org_id"):
            reason = f"Overdue since {account.overdue_since:%Y-%m-%d %H:%M} UTC and never paid."
            _set(
                account,
                actor=actor,
                action="suspension.suspended",
                reason=reason,
                suspended_at=now,
                source=SuspensionSource.AUTO,
            )
            suspended += 1
        stale = (
            BillingAccount.objects.select_for_update(skip_locked=True)
            .filter(suspension_source=SuspensionSource.AUTO, org__deleted_at__isnull=True)
            .exclude(suspension_due(now=now))
        )
        for account in stale.order_by("org_id"):
            _set(
                account,
                actor=actor,
                action="suspension.lifted",
                reason="The reason for the suspension has gone.",
                suspended_at=None,
                source="",
            )
            lifted += 1
    return {"suspended": suspended, "lifted": lifted}


def suspend_organization(*, org: Organization, reason: str, actor: Actor) -> BillingAccount:
    """Staff suspend an org by hand (source manual), with a reason; the job never lifts it."""
    with transaction.atomic():
        account = BillingAccount.objects.select_for_update().get(org=org)
        if account.suspension_source != SuspensionSource.MANUAL:
            _set(
                account,
                actor=actor,
                action="suspension.suspended",
                reason=reason,
                suspended_at=account.suspended_at or timezone.now(),
                source=SuspensionSource.MANUAL,
            )
    return account


def lift_suspension(*, org: Organization, reason: str, actor: Actor) -> BillingAccount:
    """Staff lift any suspension, with a reason. While an automatic reason remains, the daily job
    suspends the org again."""
    with transaction.atomic():
        account = BillingAccount.objects.select_for_update().get(org=org)
        if account.suspended_at is not None:
            _set(
                account, actor=actor, action="suspension.lifted", reason=reason, suspended_at=None, source=""
            )
    return account
