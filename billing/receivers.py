"""dj-stripe webhook receivers: each translates one event and calls one service.

They run in the processing task (billing.services.stripe_events.process_stripe_event), inside its
transaction, once per event id, after the delivery has been acknowledged. Whatever they raise undoes
the event's processing as a whole: transient trouble (Stripe or the database unreachable) is
retried by the task with backoff; anything else, such as an event that can never be processed
(UnprocessableEvent: a customer no org owns), is recorded as failed for staff to see and replay.
"""

import logging

from djstripe.event_handlers import djstripe_receiver

from billing.services.checkout import record_checkout_completed
from billing.services.payments import org_for_customer, refresh_invoice, sync_plan
from billing.services.purchases import record_purchase_payment, record_refund
from billing.services.stripe_events import synced_invoice
from orgs.services.audit import Actor

logger = logging.getLogger(__name__)


@djstripe_receiver("checkout.session.completed")
def on_checkout_completed(sender, event, **kwargs):
    session = event.data["object"]
    if session.get("mode") == "payment":
        record_purchase_payment(session_id=session["id"], actor=Actor.stripe(event.id))
        return
    record_checkout_completed(
        session_id=session["id"],
        customer_id=session.get("customer") or "",
        subscription_id=session.get("subscription") or "",
        actor=Actor.stripe(event.id),
    )


@djstripe_receiver(
    ["customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted"]
)
def on_subscription_changed(sender, event, **kwargs):
    sync_plan(org=org_for_customer(event.data["object"]["customer"]), actor=Actor.stripe(event.id))


@djstripe_receiver(
    ["invoice.payment_failed", "invoice.paid", "invoice.voided", "invoice.marked_uncollectible"]
)
def on_invoice_event(sender, event, **kwargs):
    invoice = event.data["object"]
    org = org_for_customer(invoice["customer"])
    refresh_invoice(
        org=org,
        invoice_id=invoice["id"],
        failed_at=event.created if event.type == "invoice.payment_failed" else None,
        actor=Actor.stripe(event.id),
        invoice=synced_invoice(org_id=org.pk, invoice_id=invoice["id"]),
    )


@djstripe_receiver("checkout.session.async_payment_succeeded")
def on_checkout_paid_later(sender, event, **kwargs):
    record_purchase_payment(session_id=event.data["object"]["id"], actor=Actor.stripe(event.id))


@djstripe_receiver("charge.refunded")
def on_charge_refunded(sender, event, **kwargs):
    record_refund(charge_id=event.data["object"]["id"], actor=Actor.stripe(event.id))
