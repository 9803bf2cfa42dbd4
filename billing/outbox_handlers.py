"""Stripe writes decided by payment events, performed after commit by the outbox."""

from billing import stripe_api
from orgs.services.outbox import PermanentOutboxError, outbox_handler


def _set_cancel_at_period_end(message, *, cancel: bool) -> dict:
    subscription_id = message.payload["subscription_id"]
    try:
        subscription = stripe_api.retrieve_subscription(subscription_id)
        if subscription["status"] == "canceled":
            return {"skipped": "the subscription has already ended"}
        if subscription["cancel_at_period_end"] == cancel:
            return {"skipped": "already so"}
        stripe_api.set_cancel_at_period_end(
            subscription_id=subscription_id, cancel=cancel, idempotency_key=message.idempotency_key
        )
    except stripe_api.StripeRefused as error:
        # Stripe answered no: asking again cannot help. StripeUnavailable propagates: retried later.
        raise PermanentOutboxError(f"Stripe refused: {error.message}") from error
    return {"subscription_id": subscription_id, "cancel_at_period_end": cancel}


@outbox_handler("stripe.subscription.cancel_at_period_end")
def cancel_at_period_end(message) -> dict:
    """A plan invoice failed: the subscription ends at the end of its period unless it is paid."""
    return _set_cancel_at_period_end(message, cancel=True)


@outbox_handler("stripe.subscription.keep")
def keep_subscription(message) -> dict:
    """The failed plan invoice was paid: keep the subscription."""
    return _set_cancel_at_period_end(message, cancel=False)
