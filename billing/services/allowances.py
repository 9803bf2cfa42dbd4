"""The monthly allowance: the plan's credits for one UTC month, granted once per (org, month, plan).

Given at org creation, by the grant_monthly_allowances job at each month start, and on a plan
change. The grant expires when its month ends (no rollover). The claim is the AllowanceClaim row,
written in the grant's transaction under the org's credit lock: running twice, or twice at once,
grants once.
"""

import logging
from datetime import UTC, date, datetime

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from billing.models import (
    AllowanceClaim,
    BillingAccount,
    ClaimStatus,
    GrantType,
    PaymentStatus,
    Plan,
    PlanName,
)
from billing.services.grants import grant_snapshot, settle_if_overage_plan
from billing.services.ledger import open_ledger
from orgs.models import AuditCategory
from orgs.services.audit import Actor, record_audit

logger = logging.getLogger(__name__)


def month_of(instant: datetime) -> date:
    instant = instant.astimezone(UTC)
    return date(instant.year, instant.month, 1)


def month_end(month: date) -> datetime:
    """The first instant of the next month: the allowance is valid in [month, month_end)."""
    year, month_number = (month.year + 1, 1) if month.month == 12 else (month.year, month.month + 1)
    return datetime(year, month_number, 1, tzinfo=UTC)


def allowance_plan(account: BillingAccount, *, free: Plan | None = None) -> Plan:
    """The plan whose allowance the org receives: its own, or the free plan's while a payment is due
    (past_due, and blocked, which is worse)."""
    if account.payment_status != PaymentStatus.OK:
        return free or Plan.objects.get(name=PlanName.FREE)
    return account.plan


def grant_allowance(*, org_id: int, plan: Plan, now=None, actor: Actor) -> AllowanceClaim | None:
    """Grant `plan`'s allowance for the month of `now` unless already granted; returns the new claim
    or None. One transaction: settlement, grant and claim commit together or not at all."""
    now = now or timezone.now()
    month = month_of(now)
    with transaction.atomic():
        ledger = open_ledger(org_id, now=now)  # serializes claimers of this org
        claim = AllowanceClaim.objects.filter(org_id=org_id, month=month, plan=plan).first()
        if claim is not None and claim.status == ClaimStatus.GRANTED:
            return None
        settle_if_overage_plan(ledger, reference=f"allowance:{month:%Y-%m}:{plan.name}")
        grant = None
        if plan.monthly_credits > 0:
            grant = ledger.add_grant(
                org_id=org_id,
                grant_type=GrantType.ALLOWANCE,
                amount=plan.monthly_credits,
                expires_at=month_end(month),
                reason=f"{plan.name} plan allowance for {month:%Y-%m}",
            )
        ledger.save()
        if claim is None:
            claim = AllowanceClaim.objects.create(
                org_id=org_id, month=month, plan=plan, status=ClaimStatus.GRANTED, grant=grant
            )
        else:
            claim.status, claim.grant, claim.last_error = ClaimStatus.GRANTED, grant, ""
            claim.attempts = F("attempts") + 1
            claim.save(update_fields=["status", "grant", "last_error", "attempts", "updated_at"])
        record_audit(
            actor=actor,
            action="credits.allowance_granted",
            category=AuditCategory.CREDITS,
            org_id=org_id,
            after={"month": f"{month:%Y-%m}", "plan": plan.name, **(grant_snapshot(grant) if grant else {})},
        )
    return claim


def record_failed_claim(*, org_id: int, plan: Plan, month: date, error: Exception) -> None:
    """Remember a failed claim: the org is left out of this run's meter reporting and retried next run."""
    with transaction.atomic():
        claim, created = AllowanceClaim.objects.get_or_create(
            org_id=org_id,
            month=month,
            plan=plan,
            defaults={"status": ClaimStatus.FAILED, "last_error": repr(error)[:2000]},
        )
        if not created and claim.status == ClaimStatus.FAILED:
            claim.attempts = F("attempts") + 1
            claim.last_error = repr(error)[:2000]
            claim.save(update_fields=["attempts", "last_error", "updated_at"])


def grant_monthly_allowances(*, now=None) -> dict:
    """Grant this month's allowance to every live org that lacks it (the job); safe to rerun."""
    now = now or timezone.now()
    month = month_of(now)
    actor = Actor.system("grant_monthly_allowances")
    granted_claims = set(
        AllowanceClaim.objects.filter(month=month, status=ClaimStatus.GRANTED).values_list(
            "org_id", "plan_id"
        )
    )
    free = Plan.objects.get(name=PlanName.FREE)
    summary = {"month": f"{month:%Y-%m}", "granted": 0, "already_granted": 0, "failed": 0, "failed_orgs": []}
    accounts = BillingAccount.objects.filter(org__deleted_at__isnull=True).select_related("plan", "org")
    for account in accounts.order_by("org_id").iterator(chunk_size=2000):
        plan = allowance_plan(account, free=free)
        if (account.org_id, plan.pk) in granted_claims:
            summary["already_granted"] += 1
            continue
        try:
            claim = grant_allowance(org_id=account.org_id, plan=plan, now=now, actor=actor)
        except Exception as error:  # one org's failure must not stop the others
            logger.exception("Allowance for org %s failed", account.org_id)
            record_failed_claim(org_id=account.org_id, plan=plan, month=month, error=error)
            summary["failed"] += 1
            summary["failed_orgs"].append(account.org.public_id)
        else:
            summary["granted" if claim is not None else "already_granted"] += 1
    return summary
