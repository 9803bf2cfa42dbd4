"""Payment state from Stripe: invoices, payment failures, the plan.

Every decision locks the org's billing account first, so concurrent webhooks of one org
serialize. Decisions are made from Stripe's current objects, never from an event's payload:
dj-stripe re-reads the invoice on every delivery, and the plan is recomputed from the
subscriptions listed afresh. Invoice states only move forward, and so do payment failures: an
older event can never undo newer state. Stripe writes these decisions need (cancel at period
end, keep) go through the outbox.
"""

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import stripe
from django.db import transaction
from django.utils import timezone

from billing import stripe_api
from billing.exceptions import UnprocessableEvent
from billing.models import (
    BillingAccount,
    FailureResolution,
    InvoiceKind,
    InvoiceRecord,
    PaymentFailure,
    PaymentStatus,
    Plan,
    PlanChange,
    PlanChangeStatus,
)
from billing.selectors import default_plan
from billing.services.allowances import grant_allowance
from billing.services.ledger import open_ledger
from billing.services.suspensions import lift_auto_suspension_if_reason_gone
from billing.subscriptions import PLAN_GIVING_STATUSES
from orgs.models import AuditCategory, EventType, Organization
from orgs.services.audit import Actor, record_audit
from orgs.services.events import emit_event
from orgs.services.outbox import enqueue_outbox

RESOLVING_STATUSES = {
    "paid": FailureResolution.PAID,
    "void": FailureResolution.VOID,
    "uncollectible": FailureResolution.UNCOLLECTIBLE,
}


def org_for_customer(customer_id: str) -> Organization:
    """The org whose Stripe customer this is (dj-stripe's subscriber), or UnprocessableEvent."""
    from djstripe.models import Customer

    customer = Customer.objects.filter(id=customer_id).select_related("subscriber").first()
    if customer is None or customer.subscriber is None:
        raise UnprocessableEvent(f"No organization for Stripe customer {customer_id}.")
    org: Organization = customer.subscriber  # dj-stripe's model is untyped
    return org


def customer_id_for(org: Organization) -> str | None:
    from djstripe.models import Customer

    customer_id: str | None = (
        Customer.objects.filter(subscriber=org, livemode=_livemode(), date_purged__isnull=True)
        .values_list("id", flat=True)
        .first()
    )
    return customer_id


def _livemode() -> bool:
    from django.conf import settings

    return settings.STRIPE_LIVE_MODE


def lock_account(org: Organization) -> BillingAccount:
    """Lock the org's billing account for the rest of the transaction: every payment decision of one
    org runs one at a time, each reading Stripe after the previous one committed.

    The account row alone: locking it joined to its plan made PostgreSQL drop the row (and the
    receiver raise DoesNotExist) when a concurrent event changed plan_id while we waited for the lock.
    """
    account = BillingAccount.objects.select_for_update().get(org=org)
    account.org = org
    return account


def _subscription_of(invoice: dict[str, Any]) -> str:
    parent = invoice.get("parent") or {}
    details = parent.get("subscription_details") or {}
    return details.get("subscription") or ""


def classify_invoice(invoice: dict[str, Any]) -> InvoiceKind:
    """`metered` if any line (all of them, paginated) is on a metered price with an amount > 0."""
    prices = list(Plan.objects.values_list("stripe_price_id", "stripe_overage_price_id"))
    plan_prices = {plan for plan, _ in prices if plan}
    overage_prices = {overage for _, overage in prices if overage}
    for line in stripe_api.invoice_lines(invoice):
        if line["amount"] <= 0:
            continue
        pricing = line.get("pricing") or {}
        price_id = (pricing.get("price_details") or {}).get("price")
        if not price_id or price_id in plan_prices:
            continue
        if price_id in overage_prices:
            return InvoiceKind.METERED
        price = stripe_api.retrieve_price(price_id)
        recurring = price.get("recurring") or {}  # type: ignore[attr-defined]  # dj-stripe gives StripeObject .get
        if recurring.get("usage_type") == "metered":
            return InvoiceKind.METERED
    return InvoiceKind.PLAN


def derive_payment_state(account: BillingAccount, *, actor: Actor) -> None:
    """payment_status: blocked while a metered failure is open, else past_due while a plan failure
    is open, else ok; overdue_since: the earliest open failure. Call with the account locked."""
    open_failures = list(PaymentFailure.objects.filter(org_id=account.org_id, resolved_at__isnull=True))
    kinds = {failure.kind for failure in open_failures}
    status = (
        PaymentStatus.BLOCKED
        if InvoiceKind.METERED in kinds
        else PaymentStatus.PAST_DUE
        if InvoiceKind.PLAN in kinds
        else PaymentStatus.OK
    )
    overdue_since = min((failure.first_failed_at for failure in open_failures), default=None)
    before = {"payment_status": account.payment_status, "overdue_since": _iso(account.overdue_since)}
    after = {"payment_status": status, "overdue_since": _iso(overdue_since)}
    if before != after:
        account.payment_status, account.overdue_since = status, overdue_since
        account.save(update_fields=["payment_status", "overdue_since", "updated_at"])
        record_audit(
            actor=actor,
            action="billing.payment_status_changed",
            category=AuditCategory.BILLING,
            org_id=account.org_id,
            before=before,
            after=after,
        )
        if before["payment_status"] != status:
            emit_event(
                org_id=account.org_id,
                event_type=EventType.ORG_PAYMENT_STATUS_CHANGED,
                data={
                    "payment_status": status,
                    "previous_payment_status": before["payment_status"],
                    "overdue_since": after["overdue_since"],
                },
            )


def _iso(instant: datetime | None) -> str | None:
    return instant.isoformat() if instant else None


# Invoice states only move forward: open → uncollectible → paid or void. A failure never moves
# back, so an older copy of an invoice, decided after a newer one, changes nothing.
_FAILURE_RANK: dict[str | None, int] = {
    None: 1,
    FailureResolution.UNCOLLECTIBLE: 2,
    FailureResolution.PAID: 3,
    FailureResolution.VOID: 3,
}


def refresh_invoice(
    *,
    org: Organization,
    invoice_id: str,
    actor: Actor,
    failed_at: datetime | None = None,
    invoice: dict[str, Any] | None = None,
) -> PaymentFailure | None:
    """Decide an invoice's payment failure from its state in Stripe, in one transaction.

    The invoice is read from Stripe while the org's account lock is held, so of two overlapping
    deliveries the later decision always sees the newer state: a copy read before the lock (as
    dj-stripe's is) can be older than the one the other delivery already decided from. `failed_at`
    says a payment of it failed (the failure event's `created`): if the invoice is still open, that
    opens its failure (once; a later failure keeps the first time). Paid, void or uncollectible
    resolves it; no copy moves a failure back. When a plan failure opens or is resolved, the outbox
    makes the subscription's cancel-at-period-end follow the org's failures. The first invoice paid
    with amount_paid > 0 sets first_paid_at, and a payment lifts an `auto` suspension whose reason
    has gone. Idempotent. `invoice`: a copy already read from Stripe while this transaction held
    the account lock (dj-stripe's, when the processing took the lock first), spared a second read.
    """
    # No savepoint of its own: it runs inside the event's processing, which has one (each costs round trips).
    with transaction.atomic(savepoint=False):
        account = lock_account(org)
        if invoice is None:
            invoice = stripe_api.as_dict(stripe_api.retrieve_invoice(invoice_id))
            _mirror_invoice(invoice)
        record = _invoice_record(org, invoice)
        failure = PaymentFailure.objects.filter(invoice_id=invoice_id).first()
        changed = True
        if invoice["status"] == "open" and failed_at is not None and failure is None:
            failure = _open_failure(record, failed_at=failed_at, actor=actor)
        elif failure is not None and _moves_forward(failure, invoice["status"]):
            _resolve_failure(failure, record, status=invoice["status"], actor=actor)
        else:
            changed = False  # nothing changed: Stripe need not be asked anything
        if changed and record.kind == InvoiceKind.PLAN and record.subscription_id:
            follow_payment_failures(org, record.subscription_id, reason=f"{invoice_id}:{invoice['status']}")
        _record_first_payment(account, invoice, actor=actor)
        derive_payment_state(account, actor=actor)
        lift_auto_suspension_if_reason_gone(account, actor=actor, now=timezone.now())
    return failure


def _mirror_invoice(invoice: dict[str, Any]) -> None:
    """Write the copy read under the lock over dj-stripe's mirror row, which holds the copy dj-stripe
    read before it: of two overlapping deliveries, the slower re-read could otherwise stay."""
    from djstripe.models import Invoice

    Invoice.objects.filter(id=invoice["id"]).update(stripe_data=invoice)


def _invoice_record(org: Organization, invoice: dict[str, Any]) -> InvoiceRecord:
    """The invoice's record; its kind is fixed the first time it is seen."""
    record = InvoiceRecord.objects.filter(invoice_id=invoice["id"]).first()
    if record is None:
        record = InvoiceRecord.objects.create(
            invoice_id=invoice["id"],
            org=org,
            kind=classify_invoice(invoice),
            subscription_id=_subscription_of(invoice),
        )
    return record


def _open_failure(record: InvoiceRecord, *, failed_at: datetime, actor: Actor) -> PaymentFailure:
    failure = PaymentFailure.objects.create(
        invoice_id=record.invoice_id,
        org_id=record.org_id,
        kind=record.kind,
        subscription_id=record.subscription_id,
        first_failed_at=failed_at,
    )
    record_audit(
        actor=actor,
        action="billing.payment_failed",
        category=AuditCategory.BILLING,
        org_id=record.org_id,
        invoice_id=record.invoice_id,
        subscription_id=record.subscription_id,
        after={"kind": record.kind, "first_failed_at": failure.first_failed_at.isoformat()},
    )
    return failure


def _moves_forward(failure: PaymentFailure, status: str) -> bool:
    return (
        status in RESOLVING_STATUSES
        and _FAILURE_RANK[RESOLVING_STATUSES[status]] > _FAILURE_RANK[failure.resolution or None]
    )


def _resolve_failure(failure: PaymentFailure, record: InvoiceRecord, *, status: str, actor: Actor) -> None:
    failure.resolution = RESOLVING_STATUSES[status]
    failure.resolved_at = failure.resolved_at or timezone.now()
    failure.save(update_fields=["resolution", "resolved_at"])
    record_audit(
        actor=actor,
        action="billing.payment_failure_resolved",
        category=AuditCategory.BILLING,
        org_id=record.org_id,
        invoice_id=record.invoice_id,
        subscription_id=record.subscription_id,
        after={"resolution": failure.resolution},
    )


def _record_first_payment(account: BillingAccount, invoice: dict[str, Any], *, actor: Actor) -> None:
    if invoice["status"] != "paid" or invoice["amount_paid"] <= 0 or account.first_paid_at is not None:
        return
    transitions = invoice.get("status_transitions") or {}
    paid_at = transitions.get("paid_at")
    account.first_paid_at = datetime.fromtimestamp(paid_at, tz=UTC) if paid_at else timezone.now()
    account.save(update_fields=["first_paid_at", "updated_at"])
    record_audit(
        actor=actor,
        action="billing.first_paid",
        category=AuditCategory.BILLING,
        org_id=account.org_id,
        invoice_id=invoice["id"],
        after={"first_paid_at": account.first_paid_at.isoformat()},
    )


FOLLOW_PAYMENT_FAILURES = "stripe.subscription.follow_payment_failures"

# A plan failure still owed: open, or written off as uncollectible. While one is, the subscription
# ends at its period end; once none is (paid or void), it is kept.
OWED_RESOLUTIONS = ["", FailureResolution.UNCOLLECTIBLE]


def cancellation_wanted(subscription_id: str) -> bool:
    """Whether the subscription should end at its period end: a plan invoice of it is still owed."""
    return PaymentFailure.objects.filter(
        subscription_id=subscription_id, kind=InvoiceKind.PLAN, resolution__in=OWED_RESOLUTIONS
    ).exists()


def follow_payment_failures(org: Organization, subscription_id: str, *, reason: str) -> None:
    """Ask (through the outbox) that the subscription's cancel-at-period-end follow its failures. The
    message decides when it is performed, from the state then (billing/outbox_handlers.py), so a
    delayed message can never undo a newer decision. One message per change of state (`reason`)."""
    enqueue_outbox(
        kind=FOLLOW_PAYMENT_FAILURES,
        payload={"subscription_id": subscription_id},
        idempotency_key=f"follow-payment-failures:{subscription_id}:{reason}",
        org=org,
    )


def plan_for_subscriptions(subscriptions: Iterable[stripe.Subscription]) -> Plan:
    """The plan of highest rank among the active and past_due subscriptions' prices (by their
    product), else the default plan. Metadata never decides it."""
    plans_by_product = {plan.stripe_product_id: plan for plan in Plan.objects.exclude(stripe_product_id="")}
    found = [
        plans_by_product[item["price"]["product"]]
        for subscription in subscriptions
        if subscription["status"] in PLAN_GIVING_STATUSES
        for item in subscription["items"]["data"]
        if item["price"]["product"] in plans_by_product
    ]
    return max(found, key=lambda plan: plan.rank, default=None) or default_plan()


def sync_plan(*, org: Organization, actor: Actor) -> Plan:
    """Recompute the org's plan from its subscriptions as Stripe has them now, in one transaction;
    on a change, apply it (apply_plan). Idempotent."""
    with transaction.atomic():
        account = lock_account(org)
        customer_id = customer_id_for(org)
        subscriptions = stripe_api.list_subscriptions(customer_id=customer_id) if customer_id else []
        plan = plan_for_subscriptions(subscriptions)
        if plan.pk != account.plan_id:
            apply_plan(account=account, plan=plan, actor=actor)
    return plan


def apply_plan(*, account: BillingAccount, plan: Plan, actor: Actor) -> None:
    """Move a locked account to the plan Stripe's subscriptions decided: billed debt is settled when
    leaving a plan that bills overage, the month's allowance is topped up to the new plan's amount
    (once per month and plan), and the change is audited. Only sync_plan decides the plan."""
    old = account.plan
    if old.overage_allowed and not plan.overage_allowed:
        # Billed overage is invoiced: it must not stay a debt on a plan that cannot go into debt.
        ledger = open_ledger(account.org_id)
        ledger.settle(reference=f"leaving-plan:{old.name}")
        ledger.save()
    account.plan = plan
    account.save(update_fields=["plan", "updated_at"])
    # A requested change to this plan is done: Stripe's subscription gives it now.
    PlanChange.objects.filter(org_id=account.org_id, status=PlanChangeStatus.PENDING, to_plan=plan).update(
        status=PlanChangeStatus.DONE, updated_at=timezone.now()
    )
    record_audit(
        actor=actor,
        action="billing.plan_changed",
        category=AuditCategory.BILLING,
        org_id=account.org_id,
        before={"plan": old.name},
        after={"plan": plan.name},
    )
    grant_allowance(org_id=account.org_id, actor=actor)
    # After the allowance (its credit lock): the event's sequence lock is taken last.
    emit_event(
        org_id=account.org_id,
        event_type=EventType.ORG_PLAN_CHANGED,
        data={"plan": plan.name, "previous_plan": old.name},
    )


def resync_org_from_stripe(*, org: Organization, actor: Actor) -> dict[str, Any]:
    """Staff's "resync from Stripe": the plan from the subscriptions, then each recent invoice."""
    plan = sync_plan(org=org, actor=actor)
    customer_id = customer_id_for(org)
    invoices = stripe_api.list_invoices(customer_id=customer_id) if customer_id else []
    for invoice in invoices:
        if invoice["status"] == "draft":
            continue
        # Without an event, an open invoice whose automatic attempts failed is a failure.
        failed = invoice["status"] == "open" and invoice["attempt_count"] > 0 and invoice["attempted"]
        refresh_invoice(
            org=org,
            invoice_id=invoice["id"],
            actor=actor,
            failed_at=datetime.fromtimestamp(invoice["created"], tz=UTC) if failed else None,
        )
    return {"plan": plan.name, "invoices": len(invoices)}
