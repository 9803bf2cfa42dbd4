"""dj-stripe webhook receivers: each translates one event and calls one service.

They run inside dj-stripe's transaction, once per event id. They raise only on transient trouble
(Stripe or the database unreachable), so dj-stripe answers 500 and Stripe delivers again; an event
that can never be processed is recorded (StripeEventProblem) and answered 200.
"""

import logging
from contextlib import contextmanager

from django.db import transaction
from djstripe.event_handlers import djstripe_receiver

from billing.exceptions import UnprocessableEvent
from billing.models import StripeEventProblem
from billing.services.checkout import record_checkout_completed
from billing.services.payments import org_for_customer, refresh_invoice, sync_plan
from orgs.services.audit import Actor

logger = logging.getLogger(__name__)


@contextmanager
def recorded_problems(event):
    try:
        with transaction.atomic():  # a savepoint: a refused event leaves dj-stripe's work intact
            yield
    except UnprocessableEvent as problem:
        logger.warning("Stripe event %s (%s) cannot be processed: %s", event.id, event.type, problem)
        StripeEventProblem.objects.create(event_id=event.id, event_type=event.type, problem=str(problem))


@djstripe_receiver("checkout.session.completed")
def on_checkout_completed(sender, event, **kwargs):
    session = event.data["object"]
    with recorded_problems(event):
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
    with recorded_problems(event):
        sync_plan(org=org_for_customer(event.data["object"]["customer"]), actor=Actor.stripe(event.id))


@djstripe_receiver(
    ["invoice.payment_failed", "invoice.paid", "invoice.voided", "invoice.marked_uncollectible"]
)
def on_invoice_event(sender, event, **kwargs):
    invoice = event.data["object"]
    with recorded_problems(event):
        refresh_invoice(
            org=org_for_customer(invoice["customer"]),
            invoice_id=invoice["id"],
            failed_at=event.created if event.type == "invoice.payment_failed" else None,
            actor=Actor.stripe(event.id),
        )
