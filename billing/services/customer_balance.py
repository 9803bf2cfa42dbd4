"""Crediting a customer's Stripe balance (say, for overage Stripe billed twice): through the outbox."""

from typing import Any

from billing import stripe_api
from orgs.models import Organization, OutboxMessage
from orgs.services.outbox import PermanentOutboxError, enqueue_outbox

CREDIT_CUSTOMER = "stripe.customer.credit"


def credit_customer(
    *, org: Organization, customer_id: str, cents: int, currency: str, description: str, idempotency_key: str
) -> OutboxMessage:
    """Queue a credit of `cents` on the customer's balance, in the caller's transaction; once per key."""
    if cents <= 0:
        raise ValueError("A credit is a positive amount.")
    payload = {"customer_id": customer_id, "cents": cents, "currency": currency, "description": description}
    message, _ = enqueue_outbox(
        kind=CREDIT_CUSTOMER, payload=payload, idempotency_key=idempotency_key, org=org
    )
    return message


def perform_customer_credit(message: OutboxMessage) -> dict[str, Any]:
    """The outbox's send: one balance transaction per message (Stripe dedupes the retries by key)."""
    payload = message.payload
    try:
        transaction = stripe_api.credit_customer_balance(
            customer_id=payload["customer_id"],
            cents=payload["cents"],
            currency=payload["currency"],
            description=payload["description"],
            metadata={"org_id": message.org.public_id if message.org else ""},
            idempotency_key=message.idempotency_key,
        )
    except stripe_api.StripeRefused as error:
        raise PermanentOutboxError(f"Stripe refused: {error.message}") from error
    return {"balance_transaction": transaction["id"], "cents": payload["cents"]}
