"""Payment state from Stripe: invoices, payment failures, the plan.

Every function here locks the org's billing account first and then reads Stripe's current
objects, so concurrent or out-of-order webhooks serialize and the last one decides from the
newest state: an older event can never undo newer state. Stripe writes these decisions need
(cancel at period end, keep) go through the outbox.
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


def _mirror(invoice) -> None:
    """Keep dj-stripe's copy as fresh as our decision (it may have stored an older fetch)."""
    from djstripe.models import Invoice

    Invoice.sync_from_stripe_data(invoice, api_key=stripe_api._options()["api_key"])


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


def refresh_invoice(
    *, invoice_id: str, customer_id: str, actor: Actor, failed_at: datetime | None = None
) -> PaymentFailure | None:
    """Decide an invoice's payment failure from its current state in Stripe, in one transaction.

    `failed_at` says a payment of it failed (the failure event's `created`): if the invoice is still
    open, that opens its failure (once; a later failure keeps the first time). Paid, void or
    uncollectible resolves it; any other event never opens one. A plan failure asks Stripe
    (through the outbox) to cancel at period end; paying it asks to keep the subscription. The
    first invoice paid with amount_paid > 0 sets first_paid_at, and a payment lifts an `auto`
    suspension whose reason has gone. Idempotent.
    """
    org = org_for_customer(customer_id)
    now = timezone.now()
    with transaction.atomic():
        account = lock_account(org)
        try:
            invoice = stripe_api.retrieve_invoice(invoice_id)
        except stripe_api.StripeRefused as error:
            raise UnprocessableEvent(f"Stripe refused invoice {invoice_id}: {error.message}") from error
        _mirror(invoice)
        record = InvoiceRecord.objects.filter(invoice_id=invoice_id).first()
        if record is None:
            record = InvoiceRecord.objects.create(
                invoice_id=invoice_id,
                org=org,
                kind=classify_invoice(invoice),
                subscription_id=_subscription_of(invoice),
            )
        failure = PaymentFailure.objects.select_for_update().filter(invoice_id=invoice_id).first()
        status = invoice["status"]

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
            and failure.resolution != RESOLVING_STATUSES[status]
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
            invoice_id=invoice["id"],
            customer_id=customer_id,
            actor=actor,
            failed_at=datetime.fromtimestamp(invoice["created"], tz=UTC) if failed else None,
        )
    return {"plan": plan.name, "invoices": len(invoices)}
