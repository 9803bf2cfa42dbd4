"""The monthly allowance: the plan's credits for one UTC month, at most one allowance per org and month.

Usage that occurs in a month is covered by that month's allowance whenever a job happens to run:
the first credit write of an org in a month (a usage debit, a grant, a plan change) grants the
month's allowance under its lock before anything else, and the entitlement check counts an
allowance still due as available (billing.selectors.allowances_due). The grant_monthly_allowances
job only sweeps orgs with no activity, so their balance shows the month's credits.

The claim is the AllowanceClaim row per (org, month, plan), written in the grant's transaction under
the org's credit lock: running twice, or twice at once, grants once. An upgrade during the month tops
the allowance up to the new plan's amount (the difference); a downgrade, or the free plan's allowance
of an org that goes past_due mid-month, adds nothing. The grant expires when its month ends (no
rollover).
"""

import logging
from datetime import date, datetime
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from billing.models import (
    AllowanceClaim,
    BillingAccount,
    ClaimStatus,
    CreditBalance,
    CreditGrant,
    GrantType,
    Plan,
)
from billing.periods import month_end, month_of
from billing.selectors import AllowanceDue, allowance_plan, allowances_due, default_plan
from billing.services.ledger import OrgLedger, grant_snapshot, open_ledger
from orgs.models import AuditCategory
from orgs.services.audit import Actor, record_audit

logger = logging.getLogger(__name__)


def ensure_allowances(
    ledgers: dict[int, OrgLedger], *, now: datetime, actor: Actor, due: dict[int, AllowanceDue] | None = None
) -> list[AllowanceClaim]:
    """Grant, into the opened (locked) ledgers, the allowance each org's month still owes it; returns
    the claims written. The caller saves the ledgers. Billed debt is settled before a grant."""
    due = allowances_due(ledgers, now=now) if due is None else due
    month = month_of(now)
    claims = []
    for org_id, ledger in ledgers.items():
        owed = due.get(org_id)
        if owed is None or owed.plan_claimed:
            continue
        grant = None
        if owed.top_up > 0:
            ledger.settle(reference=f"allowance:{month:%Y-%m}:{owed.plan.name}")
            grant = ledger.add_grant(
                org_id=org_id,
                grant_type=GrantType.ALLOWANCE,
                amount=owed.top_up,
                expires_at=month_end(month),
                reason=f"{owed.plan.name} plan allowance for {month:%Y-%m}",
            )
        claims.append(_claim(org_id, month=month, plan=owed.plan, grant=grant, actor=actor, owed=owed))
    return claims


def _claim(
    org_id: int, *, month: date, plan: Plan, grant: CreditGrant | None, actor: Actor, owed: AllowanceDue
) -> AllowanceClaim:
    claim, created = AllowanceClaim.objects.get_or_create(
        org_id=org_id,
        month=month,
        plan=plan,
        defaults={"status": ClaimStatus.GRANTED, "grant": grant, "credits": owed.top_up},
    )
    if not created:  # a failed claim, now granted
        claim.status, claim.grant, claim.credits, claim.last_error = (
            ClaimStatus.GRANTED,
            grant,
            owed.top_up,
            "",
        )
        claim.attempts = F("attempts") + 1
        claim.save(update_fields=["status", "grant", "credits", "last_error", "attempts", "updated_at"])
    record_audit(
        actor=actor,
        action="credits.allowance_granted",
        category=AuditCategory.CREDITS,
        org_id=org_id,
        after={
            "month": f"{month:%Y-%m}",
            "plan": plan.name,
            "credits": str(owed.top_up),
            **(grant_snapshot(grant) if grant else {}),
        },
    )
    return claim


def grant_allowance(*, org_id: int, now: datetime | None = None, actor: Actor) -> AllowanceClaim | None:
    """Grant the allowance the org's month (of `now`) still owes it, for its allowance plan; returns the
    new claim or None when nothing was owed. One transaction: settlement, grant and claim commit
    together or not at all. Idempotent."""
    now = now or timezone.now()
    with transaction.atomic():
        ledger = open_ledger(org_id, now=now)  # serializes claimers of this org
        claims = ensure_allowances({org_id: ledger}, now=now, actor=actor)
        ledger.save()
    return claims[0] if claims else None


def record_failed_claim(*, org_id: int, plan: Plan, month: date, error: Exception) -> None:
    """Remember a failed claim: the org is left out of this run's meter reporting and retried next run."""
    with transaction.atomic():
        # The credit lock, as every claim writer takes it.
        CreditBalance.objects.select_for_update().filter(org_id=org_id).first()
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


def grant_monthly_allowances(*, now: datetime | None = None) -> dict[str, Any]:
    """Grant this month's allowance to every live org that lacks it (the job); safe to rerun."""
    now = now or timezone.now()
    month = month_of(now)
    actor = Actor.system("grant_monthly_allowances")
    granted_claims = set(
        AllowanceClaim.objects.filter(month=month, status=ClaimStatus.GRANTED).values_list(
            "org_id", "plan_id"
        )
    )
    default = default_plan()
    summary: dict[str, Any] = {
        "month": f"{month:%Y-%m}",
        "granted": 0,
        "already_granted": 0,
        "failed": 0,
        "failed_orgs": [],
    }
    accounts = BillingAccount.objects.filter(org__deleted_at__isnull=True).select_related("plan", "org")
    for account in accounts.order_by("org_id").iterator(chunk_size=2000):
        plan = allowance_plan(account, default=default)
        if (account.org_id, plan.pk) in granted_claims:
            summary["already_granted"] += 1
            continue
        try:
            claim = grant_allowance(org_id=account.org_id, now=now, actor=actor)
        except Exception as error:  # one org's failure must not stop the others
            logger.exception("Allowance for org %s failed", account.org_id)
            record_failed_claim(org_id=account.org_id, plan=plan, month=month, error=error)
            summary["failed"] += 1
            summary["failed_orgs"].append(account.org.public_id)
        else:
            summary["granted" if claim is not None else "already_granted"] += 1
    return summary
