"""The status header at the top of an org's admin page: "why is this org blocked?" in one glance.

Plan, payment status, suspension (source, since, by whom, why), balances, overdue since, the open
payment failures with their invoices, the latest denials products received, and the verdict: every
rule of billing.entitlements.RULES that denies today (the same rules the entitlement check answers
from), each in plain words with what lifts it. Rendered by templates/admin/orgs/organization/_status.html.
"""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Sum
from django.template.loader import render_to_string
from django.utils import timezone

from billing.entitlements import EntitlementState, Rule, verdict
from billing.models import (
    BillingAccount,
    CreditBalance,
    DenialReceipt,
    InvoiceKind,
    PaymentFailure,
    PaymentStatus,
    SuspensionSource,
)
from billing.selectors import active_holds, allowances_due, expired_unposted_grants
from billing.services.suspensions import OVERDUE_GRACE
from core.display import money_text
from orgs.models import AuditEntry, Organization

# The smallest cost a call can have: the verdict is about "any call that costs credits".
SMALLEST_COST = Decimal("0.000001")
RECEIPTS_SHOWN = 10


@dataclass(frozen=True)
class OpenFailure:
    invoice_id: str
    kind: str
    amount: str  # in the invoice's currency, "" when the invoice is not mirrored yet
    failed_at: datetime
    age: str  # "4 days ago"
    url: str  # the invoice in Stripe's dashboard

    def label(self) -> str:
        amount = f" ({self.amount})" if self.amount else ""
        return f"{self.kind} invoice {self.invoice_id}{amount} failed {self.age}"


@dataclass(frozen=True)
class Suspension:
    source: str
    since: datetime
    by: str
    reason: str


@dataclass(frozen=True)
class Status:
    public_id: str
    plan: str
    overage_allowed: bool
    payment_status: str
    payment_status_label: str
    suspension: Suspension | None
    available: Decimal
    posted: Decimal
    overdue_since: datetime | None
    first_paid_at: datetime | None
    failures: list[OpenFailure]
    denying: list[Rule]  # the verdict: every rule that denies a paid call today, in precedence order
    sentences: list[str]  # the verdict in plain words, one per denying rule (or one "Allowed" line)
    receipts: list[DenialReceipt] = field(default_factory=list)
    deleted_at: datetime | None = None  # soft-deleted: the check answers 404 before any rule

    @property
    def blocked(self) -> bool:
        return bool(self.denying) or self.deleted_at is not None


def ago(then: datetime, now: datetime) -> str:
    days = (now - then).days
    if days <= 0:
        return "today"
    return "1 day ago" if days == 1 else f"{days} days ago"


def day(when: datetime) -> str:
    return f"{when:%-d %b %Y}"


def org_state(account: BillingAccount, *, now: datetime) -> EntitlementState:
    """The org's entitlement state for a member's paid call, as the check reads it (no metric)."""
    balance = CreditBalance.objects.filter(org_id=account.org_id).first() or CreditBalance()
    held = active_holds(account.org_id, now=now).aggregate(total=Sum("cost"))["total"]
    stale = expired_unposted_grants(account.org_id, now=now).aggregate(total=Sum("remaining"))["total"]
    due = allowances_due([account.org_id], now=now).get(account.org_id)
    return EntitlementState(
        org_pk=account.org_id,
        role="member",  # the org's verdict: for any member (not_a_member is about one user)
        plan=account.plan.name,
        overage_allowed=account.plan.overage_allowed,
        payment_status=account.payment_status,
        suspended=account.suspended,
        posted=balance.posted,
        held=held or Decimal(0),
        expired_unposted=stale or Decimal(0),
        metric_id=0,
        credits_per_unit=SMALLEST_COST,
        billed_debt=balance.billed_debt,
        allowance_due=due.top_up if due else Decimal(0),
    )


def open_failures(org: Organization, *, now: datetime) -> list[OpenFailure]:
    from djstripe.models import Invoice

    failures = list(
        PaymentFailure.objects.filter(org=org, resolved_at__isnull=True).order_by("first_failed_at")
    )
    mirrored = {
        invoice.id: invoice.stripe_data
        for invoice in Invoice.objects.filter(id__in=[failure.invoice_id for failure in failures])
    }
    dashboard = "https://dashboard.stripe.com/" + ("" if settings.STRIPE_LIVE_MODE else "test/")
    return [
        OpenFailure(
            invoice_id=failure.invoice_id,
            kind=failure.get_kind_display(),
            amount=_amount(mirrored.get(failure.invoice_id)),
            failed_at=failure.first_failed_at,
            age=ago(failure.first_failed_at, now),
            url=f"{dashboard}invoices/{failure.invoice_id}",
        )
        for failure in failures
    ]


def _amount(data: dict[str, Any] | None) -> str:
    if not data:
        return ""
    return money_text(data.get("amount_remaining", data.get("amount_due")), data.get("currency"))


def suspension(account: BillingAccount) -> Suspension | None:
    if account.suspended_at is None:
        return None
    entry = (
        AuditEntry.objects.filter(org_id=account.org_id, action="suspension.suspended")
        .order_by("-created_at", "-id")
        .first()
    )
    by = (entry.actor_label or entry.get_actor_type_display()) if entry else "unknown"
    return Suspension(
        source=account.suspension_source, since=account.suspended_at, by=by, reason=account.suspension_reason
    )


def organization_status(org: Organization, *, now: datetime | None = None) -> Status:
    """Everything the header shows, read in a handful of queries."""
    now = now or timezone.now()
    account = BillingAccount.objects.select_related("plan").get(org=org)
    state = org_state(account, now=now)
    failures = open_failures(org, now=now)
    denying = verdict(state, cost=SMALLEST_COST)
    status = Status(
        public_id=org.public_id,
        plan=account.plan.name,
        overage_allowed=account.plan.overage_allowed,
        payment_status=account.payment_status,
        payment_status_label=account.get_payment_status_display(),
        suspension=suspension(account),
        available=state.available,
        posted=state.posted,
        overdue_since=account.overdue_since,
        first_paid_at=account.first_paid_at,
        failures=failures,
        denying=denying,
        sentences=[],
        deleted_at=org.deleted_at,
        receipts=list(
            DenialReceipt.objects.filter(org=org)
            .select_related("product")
            .order_by("-minute", "-id")[:RECEIPTS_SHOWN]
        ),
    )
    status.sentences.extend(explain(status, now=now))
    return status


# --- The verdict in plain words -------------------------------------------------------------------


def explain(status: Status, *, now: datetime) -> list[str]:
    """One sentence per denying rule, with the facts behind it and what lifts it."""
    sentences = []
    if status.deleted_at is not None:  # the table's first row: the org is not found
        sentences.append(
            f"Blocked: soft-deleted on {day(status.deleted_at)}, so products get 404 org_not_found. "
            "Restoring it (Restore, with a reason) lifts it."
        )
    if not status.denying:
        return sentences or [_allowed(status, now=now)]
    for rule in status.denying:
        explainer = EXPLAINERS.get(rule.reason)
        text = explainer(status) if explainer else f"{rule.words[0].upper()}{rule.words[1:]}. {rule.lifts}"
        sentences.append(f"Blocked: {text}")
    return sentences


def _failures_text(failures: list[OpenFailure]) -> str:
    return ", ".join(failure.label() for failure in failures)


def _suspended(status: Status) -> str:
    held = status.suspension
    assert held is not None  # the rule denies only while suspended
    if held.source == SuspensionSource.MANUAL:
        why = f": “{held.reason}”" if held.reason else ""
        return (
            f"suspended by {held.by} on {day(held.since)}{why}. Only staff lift a manual suspension "
            "(Lift suspension, with a reason)."
        )
    facts = _failures_text(status.failures) or "no payment failure is open any more"
    never = " and this org has never paid" if status.first_paid_at is None else ""
    lifts = (
        "Paying it lifts the suspension."
        if len(status.failures) == 1
        else "Paying the open invoices lifts the suspension."
        if status.failures
        else "The daily job (reconcile_suspensions) lifts it, or staff now (Lift suspension)."
    )
    return f"{facts}{never}; auto-suspended on {day(held.since)}. {lifts}"


def _payment_blocked(status: Status) -> str:
    metered = [failure for failure in status.failures if failure.kind == InvoiceKind.METERED.label]
    facts = _failures_text(metered) or "a metered invoice is unpaid"
    return f"{facts}: usage is blocked until it is paid. Paying it (or voiding it in Stripe) lifts the block."


def _insufficient(status: Status) -> str:
    return (
        f"the available balance is {status.available} credits and plan {status.plan} has no overage, "
        "so calls that cost credits are refused. Granting credits, the next month's allowance or a "
        "plan with overage lifts it."
    )


EXPLAINERS = {
    "billing_suspended": _suspended,
    "payment_blocked": _payment_blocked,
    "insufficient_credits": _insufficient,
}


def _allowed(status: Status, *, now: datetime) -> str:
    text = "Allowed: members' calls pass the entitlement check."
    if status.payment_status == PaymentStatus.PAST_DUE and status.failures:
        text += f" But {_failures_text(status.failures)}"
        if status.first_paid_at is None and status.overdue_since is not None:
            text += (
                f"; this org has never paid, so it is auto-suspended from "
                f"{day(status.overdue_since + OVERDUE_GRACE)} unless it pays"
            )
        text += "."
    return text


def render_status(request: Any, org: Organization) -> str:
    """The header's HTML, for the org page's sections (core.admin.sections: Section.header)."""
    return render_to_string(
        "admin/orgs/organization/_status.html", {"status": organization_status(org)}, request=request
    )
