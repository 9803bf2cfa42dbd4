"""Payment state from Stripe: invoices, payment failures, the plan.

Every decision locks the org's billing account first, so concurrent webhooks of one org
serialize. Decisions are made from Stripe's current objects, never from an event's payload:
dj-stripe re-reads the invoice on every delivery, and the plan is recomputed from the
subscriptions listed afresh. Invoice states only move forward, and so do payment failures: an
older event can never undo newer state. Stripe writes these decisions need (cancel at period
end, keep) go through the outbox.
"""

from datetime import UTC, datetime

from django.db import transaction
from django.utils import timezone

from billing import stripe_api
from billing.exceptions import UnprocessableEvent
from billing.models import (
    PLAN_RANK,
    BillingAccount,
    FailureResolution,
    InvoiceKind,
    InvoiceRecord,
    PaymentFailure,
    PaymentStatus,
    Plan,
    PlanName,
)
from billing.services.allowances import allowance_plan, grant_allowance
from billing.services.ledger import open_ledger
from billing.services.suspensions import lift_auto_suspension_if_reason_gone
from orgs.models import AuditCategory, Organization
from orgs.services.audit import Actor, record_audit
from orgs.services.outbox import enqueue_outbox

RESOLVING_STATUSES = {
    "paid": FailureResolution.PAID,
    "void": FailureResolution.VOID,
    "uncollectible": FailureResolution.UNCOLLECTIBLE,
}
LIVE_SUBSCRIPTION_STATUSES = ("active", "past_due")


def org_for_customer(customer_id: str) -> Organization:
    """The org whose Stripe customer this is (dj-stripe's subscriber), or UnprocessableEvent."""
    from djstripe.models import Customer

    customer = Customer.objects.filter(id=customer_id).select_related("subscriber").first()
    if customer is None or customer.subscriber is None:
        raise UnprocessableEvent(f"No organization for Stripe customer {customer_id}.")
    return customer.subscriber


def customer_id_for(org: Organization) -> str | None:
    from djstripe.models import Customer

    return (
        Customer.objects.filter(subscriber=org, livemode=_livemode(), date_purged__isnull=True)
        .values_list("id", flat=True)
        .first()
    )


def _livemode() -> bool:
    from django.conf import settings

    return settings.STRIPE_LIVE_MODE


def lock_account(org: Organization) -> BillingAccount:
    """Lock the org's billing account for the rest of the transaction: every payment decision of one
    org runs one at a time, each reading Stripe after the previous one committed."""
    return BillingAccount.objects.select_for_update().select_related("org", "plan").get(org=org)


def _subscription_of(invoice) -> str:
    parent = invoice.get("parent") or {}
    details = parent.get("subscription_details") or {}
    return details.get("subscription") or ""


def classify_invoice(invoice) -> InvoiceKind:
    """`metered` if any line (all of them, paginated) is on a metered price with an amount > 0."""
    overage_prices = set(
        Plan.objects.exclude(stripe_overage_price_id="").values_list("stripe_overage_price_id", flat=True)
    )
    plan_prices = set(Plan.objects.exclude(stripe_price_id="").values_list("stripe_price_id", flat=True))
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
        if (price.get("recurring") or {}).get("usage_type") == "metered":
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


def _iso(instant: datetime | None) -> str | None:
    return instant.isoformat() if instant else None


# Invoice states only move forward: open → uncollectible → paid or void. A failure never moves
# back, so an older copy of an invoice, decided after a newer one, changes nothing.
_FAILURE_RANK = {
    None: 1,
    FailureResolution.UNCOLLECTIBLE: 2,
    FailureResolution.PAID: 3,
    FailureResolution.VOID: 3,
}


def invoice_from_delivery(invoice_id: str) -> dict:
    """The invoice as dj-stripe re-read it from Stripe while processing this delivery."""
    from djstripe.models import Invoice

    return Invoice.objects.values_list("stripe_data", flat=True).get(id=invoice_id)


def refresh_invoice(
    *, invoice: dict, actor: Actor, failed_at: datetime | None = None
) -> PaymentFailure | None:
    """Decide an invoice's payment failure from its current state in Stripe, in one transaction.

    `invoice` is Stripe's current copy: re-read by dj-stripe during the webhook delivery, or by a
    resync. `failed_at` says a payment of it failed (the failure event's `created`): if the invoice
    is still open, that opens its failure (once; a later failure keeps the first time). Paid, void
    or uncollectible resolves it; any other event never opens one, and no copy moves a failure
    back. A plan failure asks Stripe (through the outbox) to cancel at period end; paying it asks
    to keep the subscription. The first invoice paid with amount_paid > 0 sets first_paid_at, and a
    payment lifts an `auto` suspension whose reason has gone. Idempotent.
    """
    org = org_for_customer(invoice["customer"])
    invoice_id, status, now = invoice["id"], invoice["status"], timezone.now()
    # No savepoint of its own: a receiver calls it inside recorded_problems' (each costs round trips).
    with transaction.atomic(savepoint=False):
        account = lock_account(org)
        record = InvoiceRecord.objects.filter(invoice_id=invoice_id).first()
        if record is None:
            record = InvoiceRecord.objects.create(
                invoice_id=invoice_id,
                org=org,
                kind=classify_invoice(invoice),
                subscription_id=_subscription_of(invoice),
            )
        failure = PaymentFailure.objects.filter(invoice_id=invoice_id).first()

        if status == "open" and failed_at is not None and failure is None:
            failure = PaymentFailure.objects.create(
                invoice_id=invoice_id,
                org=org,
                kind=record.kind,
                subscription_id=record.subscription_id,
                first_failed_at=failed_at,
            )
            record_audit(
                actor=actor,
                action="billing.payment_failed",
                category=AuditCategory.BILLING,
                org=org,
                invoice_id=invoice_id,
                subscription_id=record.subscription_id,
                after={"kind": record.kind, "first_failed_at": failure.first_failed_at.isoformat()},
            )
            if record.kind == InvoiceKind.PLAN and record.subscription_id:
                _ask_stripe(org, record, cancel=True)
        elif (
            status in RESOLVING_STATUSES
            and failure is not None
            and _FAILURE_RANK[RESOLVING_STATUSES[status]] > _FAILURE_RANK[failure.resolution or None]
        ):
            was_open = failure.is_open
            failure.resolution = RESOLVING_STATUSES[status]
            failure.resolved_at = failure.resolved_at or now
            failure.save(update_fields=["resolution", "resolved_at"])
            record_audit(
                actor=actor,
                action="billing.payment_failure_resolved",
                category=AuditCategory.BILLING,
                org=org,
                invoice_id=invoice_id,
                subscription_id=record.subscription_id,
                after={"resolution": failure.resolution},
            )
            if was_open and status == "paid" and record.kind == InvoiceKind.PLAN and record.subscription_id:
                _ask_stripe(org, record, cancel=False)

        if status == "paid" and invoice["amount_paid"] > 0 and account.first_paid_at is None:
            paid_at = (invoice.get("status_transitions") or {}).get("paid_at")
            account.first_paid_at = datetime.fromtimestamp(paid_at, tz=UTC) if paid_at else now
            account.save(update_fields=["first_paid_at", "updated_at"])
            record_audit(
                actor=actor,
                action="billing.first_paid",
                category=AuditCategory.BILLING,
                org=org,
                invoice_id=invoice_id,
                after={"first_paid_at": account.first_paid_at.isoformat()},
            )
        derive_payment_state(account, actor=actor)
        lift_auto_suspension_if_reason_gone(account, actor=actor, now=now)
    return failure


def _ask_stripe(org: Organization, record: InvoiceRecord, *, cancel: bool) -> None:
    kind = "stripe.subscription.cancel_at_period_end" if cancel else "stripe.subscription.keep"
    enqueue_outbox(
        kind=kind,
        payload={"subscription_id": record.subscription_id, "invoice_id": record.invoice_id},
        idempotency_key=f"{'cancel-at-period-end' if cancel else 'keep'}:{record.invoice_id}",
        org=org,
    )


def plan_for_subscriptions(subscriptions) -> Plan:
    """The highest plan among the active and past_due subscriptions' prices (by their product), else
    free. Metadata never decides it."""
    plans_by_product = {plan.stripe_product_id: plan for plan in Plan.objects.exclude(stripe_product_id="")}
    found = [
        plans_by_product[item["price"]["product"]]
        for subscription in subscriptions
        if subscription["status"] in LIVE_SUBSCRIPTION_STATUSES
        for item in subscription["items"]["data"]
        if item["price"]["product"] in plans_by_product
    ]
    return max(found, key=lambda plan: PLAN_RANK[plan.name], default=None) or Plan.objects.get(
        name=PlanName.FREE
    )


def sync_plan(*, org: Organization, actor: Actor) -> Plan:
    """Recompute the org's plan from its subscriptions as Stripe has them now, in one transaction.

    On a change: an overage plan's negative balance is settled before leaving it, the new plan's
    allowance is granted (once per month and plan), and the change is audited. Idempotent.
    """
    with transaction.atomic():
        account = lock_account(org)
        customer_id = customer_id_for(org)
        subscriptions = stripe_api.list_subscriptions(customer_id=customer_id) if customer_id else []
        plan = plan_for_subscriptions(subscriptions)
        if plan.pk == account.plan_id:
            return plan
        old = account.plan
        if old.overage_allowed and not plan.overage_allowed:
            ledger = open_ledger(org.pk)
            ledger.settle(reference=f"leaving-plan:{old.name}")
            ledger.save()
        account.plan = plan
        account.save(update_fields=["plan", "updated_at"])
        record_audit(
            actor=actor,
            action="billing.plan_changed",
            category=AuditCategory.BILLING,
            org=org,
            before={"plan": old.name},
            after={"plan": plan.name},
        )
        grant_allowance(org_id=org.pk, plan=allowance_plan(account), actor=actor)
    return plan


def resync_org_from_stripe(*, org: Organization, actor: Actor) -> dict:
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
            invoice=invoice,
            actor=actor,
            failed_at=datetime.fromtimestamp(invoice["created"], tz=UTC) if failed else None,
        )
    return {"plan": plan.name, "invoices": len(invoices)}
