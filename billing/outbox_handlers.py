"""Stripe writes decided by payment events, performed after commit by the outbox."""

from django.db import transaction

from billing import stripe_api
from billing.services.auto_top_up import AUTO_TOP_UP, perform_auto_top_up
from billing.services.customer_balance import CREDIT_CUSTOMER, perform_customer_credit
from billing.services.payments import FOLLOW_PAYMENT_FAILURES, cancellation_wanted, lock_account
from billing.services.plan_changes import CHANGE_PLAN, perform_plan_change
from billing.subscriptions import CANCEL_FOR_PAYMENT_FAILURE as CANCEL_REASON
from billing.subscriptions import CANCEL_REASON_KEY
from orgs.services.audit import Actor
from orgs.services.outbox import PermanentOutboxError, outbox_handler

# CANCEL_REASON_KEY = CANCEL_REASON is set on a subscription we asked to end for an unpaid plan
# invoice: only such a cancellation is ever undone here, never one the customer, staff or a
# downgrade asked for (billing/subscriptions.py).


@outbox_handler(FOLLOW_PAYMENT_FAILURES)
def follow_payment_failures(message) -> dict:
    """End the subscription at its period end while a plan invoice of it is owed; keep it once none
    is. Decided from the state when performed, under the org's account lock, so of a delayed "cancel"
    and a newer "keep" the one performed last still does the right thing."""
    subscription_id = message.payload["subscription_id"]
    try:
        with transaction.atomic():
            lock_account(message.org)  # serializes with the invoice decisions of this org
            cancel = cancellation_wanted(subscription_id)
            subscription = stripe_api.retrieve_subscription(subscription_id)
            if subscription["status"] == "canceled":
                return {"skipped": "the subscription has already ended"}
            ours = (subscription["metadata"] or {}).get(CANCEL_REASON_KEY) == CANCEL_REASON
            if subscription["cancel_at_period_end"] == cancel:
                return {"skipped": "already so"}
            if not cancel and not ours:
                return {"skipped": "the cancellation was not asked for a payment failure"}
            stripe_api.set_cancel_at_period_end(
                subscription_id=subscription_id,
                cancel=cancel,
                metadata={CANCEL_REASON_KEY: CANCEL_REASON if cancel else ""},
                idempotency_key=f"{message.idempotency_key}:{'cancel' if cancel else 'keep'}",
            )
    except stripe_api.StripeRefused as error:
        # Stripe answered no: asking again cannot help. StripeUnavailable propagates: retried later.
        raise PermanentOutboxError(f"Stripe refused: {error.message}") from error
    return {"subscription_id": subscription_id, "cancel_at_period_end": cancel}


# Kinds queued before the decision moved to perform time: they follow the same rule.
outbox_handler("stripe.subscription.cancel_at_period_end")(follow_payment_failures)
outbox_handler("stripe.subscription.keep")(follow_payment_failures)


@outbox_handler(CHANGE_PLAN)
def change_plan(message) -> dict:
    """A requested plan change, written to Stripe (billing/services/plan_changes.py)."""
    return perform_plan_change(change_id=message.payload["plan_change_id"], actor=Actor.system("plan_change"))


@outbox_handler(AUTO_TOP_UP)
def auto_top_up(message) -> dict:
    """An automatic top-up's payment (billing/services/auto_top_up.py)."""
    return perform_auto_top_up(purchase_id=message.payload["purchase_id"], actor=Actor.system("auto_top_up"))


@outbox_handler(CREDIT_CUSTOMER)
def credit_customer(message) -> dict:
    """A credit on the customer's Stripe balance (billing/services/customer_balance.py)."""
    return perform_customer_credit(message)
