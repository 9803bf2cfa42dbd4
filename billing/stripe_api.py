"""Every call this project makes to Stripe (dj-stripe makes its own), in one place.

Each call sends the pinned API version and the environment's key; every write carries an
idempotency key derived from our own rows, so a retry after a lost answer is harmless. Errors
are sorted in two: StripeUnavailable (a network failure, a 5xx, a rate limit: retry later) and
StripeRefused (Stripe answered no: retrying the same request can never succeed).
"""

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import stripe
from django.conf import settings

from core.errors import ServiceError

if TYPE_CHECKING:
    from orgs.models import Organization

_Answer = TypeVar("_Answer")

# The stripe library retries network errors and 5xx itself, with the same idempotency key.
stripe.max_network_retries = 2


class StripeUnavailable(ServiceError):
    code = "stripe_unavailable"
    status = 503
    message = "Stripe could not be reached; try again shortly."


class StripeRefused(ServiceError):
    code = "stripe_refused"
    status = 502
    message = "Stripe refused the request."


TRANSIENT = (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError)


def _options(idempotency_key: str | None = None) -> dict[str, str]:
    key = settings.STRIPE_LIVE_SECRET_KEY if settings.STRIPE_LIVE_MODE else settings.STRIPE_TEST_SECRET_KEY
    options = {"api_key": key, "stripe_version": settings.STRIPE_API_VERSION}
    if idempotency_key:
        options["idempotency_key"] = idempotency_key
    return options


def _call(
    function: Callable[..., _Answer], *args: Any, idempotency_key: str | None = None, **params: Any
) -> _Answer:
    try:
        return function(*args, **params, **_options(idempotency_key))
    except TRANSIENT as error:
        raise StripeUnavailable(details={"stripe_error": str(error)[:300]}) from error
    except stripe.StripeError as error:
        raise StripeRefused(
            str(error.user_message or error)[:300], details={"stripe_code": error.code}
        ) from error


def as_dict(obj: Any) -> dict[str, Any]:
    """A stripe library object as plain JSON, the way dj-stripe stores it as stripe_data (its JSON
    form: to_dict() keeps Decimals for decimal strings, which no JSON column takes)."""
    return json.loads(str(obj)) if hasattr(obj, "to_dict") else dict(obj)


def is_missing(error: StripeRefused) -> bool:
    return error.details.get("stripe_code") == "resource_missing"


# --- Customers, subscriptions, checkout ----------------------------------------------------------


def create_customer(*, org: "Organization") -> stripe.Customer:
    """The org's Stripe customer; linked to the org as dj-stripe's subscriber by its metadata."""
    return _call(
        stripe.Customer.create,
        email=org.billing_email,
        name=org.name,
        metadata={"djstripe_subscriber": str(org.pk), "org_id": org.public_id},
        idempotency_key=f"customer:{org.public_id}",
    )


def credit_customer_balance(
    *,
    customer_id: str,
    cents: int,
    currency: str,
    description: str,
    metadata: dict[str, str],
    idempotency_key: str,
) -> stripe.CustomerBalanceTransaction:
    """A credit on the customer's balance (a negative balance transaction): Stripe takes it off the
    customer's next invoices."""
    return _call(
        stripe.Customer.create_balance_transaction,
        customer_id,
        amount=-cents,
        currency=currency,
        description=description,
        metadata=metadata,
        idempotency_key=idempotency_key,
    )


def list_subscriptions(*, customer_id: str) -> list[stripe.Subscription]:
    page = _call(stripe.Subscription.list, customer=customer_id, status="all", limit=100)
    return list(page.auto_paging_iter())


def retrieve_subscription(subscription_id: str) -> stripe.Subscription:
    return _call(stripe.Subscription.retrieve, subscription_id)


def set_cancel_at_period_end(
    *, subscription_id: str, cancel: bool, metadata: dict[str, str], idempotency_key: str
) -> stripe.Subscription:
    return _call(
        stripe.Subscription.modify,
        subscription_id,
        cancel_at_period_end=cancel,
        metadata=metadata,
        idempotency_key=idempotency_key,
    )


def change_subscription_items(
    *, subscription_id: str, items: list[dict[str, Any]], idempotency_key: str
) -> stripe.Subscription:
    """Swap the subscription's items now; the prorated difference is invoiced (and charged) at once."""
    return _call(
        stripe.Subscription.modify,
        subscription_id,
        items=items,
        proration_behavior="always_invoice",
        idempotency_key=idempotency_key,
    )


def schedule_from_subscription(*, subscription_id: str, idempotency_key: str) -> stripe.SubscriptionSchedule:
    return _call(
        stripe.SubscriptionSchedule.create, from_subscription=subscription_id, idempotency_key=idempotency_key
    )


def set_schedule_phases(
    *, schedule_id: str, phases: list[dict[str, Any]], idempotency_key: str
) -> stripe.SubscriptionSchedule:
    """The schedule's phases; released at the end of the last (the subscription goes on as it is)."""
    return _call(
        stripe.SubscriptionSchedule.modify,
        schedule_id,
        phases=phases,
        end_behavior="release",
        idempotency_key=idempotency_key,
    )


def retrieve_schedule(schedule_id: str) -> stripe.SubscriptionSchedule:
    return _call(stripe.SubscriptionSchedule.retrieve, schedule_id)


def release_schedule(*, schedule_id: str, idempotency_key: str) -> stripe.SubscriptionSchedule:
    return _call(stripe.SubscriptionSchedule.release, schedule_id, idempotency_key=idempotency_key)


def create_checkout_session(
    *,
    customer_id: str,
    prices: list[str],
    success_url: str,
    cancel_url: str,
    metadata: dict[str, str],
    idempotency_key: str,
) -> stripe.checkout.Session:
    """Subscription mode: the plan's monthly price (quantity 1) and its metered overage price."""
    line_items = [{"price": prices[0], "quantity": 1}, *({"price": price} for price in prices[1:])]
    return _call(
        stripe.checkout.Session.create,
        mode="subscription",
        customer=customer_id,
        line_items=line_items,
        success_url=success_url,
        cancel_url=cancel_url,
        client_reference_id=metadata["org_id"],
        metadata=metadata,
        subscription_data={"metadata": metadata},
        idempotency_key=idempotency_key,
    )


def create_payment_checkout_session(
    *,
    customer_id: str,
    amount_cents: int,
    currency: str,
    description: str,
    success_url: str,
    cancel_url: str,
    metadata: dict[str, str],
    idempotency_key: str,
) -> stripe.checkout.Session:
    """Payment mode: one line at `amount_cents` (an inline price); the card is saved for off-session
    top-ups (setup_future_usage) and the payment intent carries our metadata."""
    return _call(
        stripe.checkout.Session.create,
        mode="payment",
        customer=customer_id,
        line_items=[
            {
                "price_data": {
                    "currency": currency,
                    "unit_amount": amount_cents,
                    "product_data": {"name": description},
                },
                "quantity": 1,
            }
        ],
        success_url=success_url,
        cancel_url=cancel_url,
        client_reference_id=metadata["org_id"],
        metadata=metadata,
        payment_intent_data={"metadata": metadata, "setup_future_usage": "off_session"},
        idempotency_key=idempotency_key,
    )


def retrieve_payment_intent(payment_intent_id: str) -> stripe.PaymentIntent:
    return _call(stripe.PaymentIntent.retrieve, payment_intent_id)


def charge_saved_card(
    *,
    customer_id: str,
    payment_method_id: str,
    amount_cents: int,
    currency: str,
    metadata: dict[str, str],
    idempotency_key: str,
) -> stripe.PaymentIntent:
    """An off-session payment with the customer's saved card, confirmed at once."""
    return _call(
        stripe.PaymentIntent.create,
        customer=customer_id,
        payment_method=payment_method_id,
        amount=amount_cents,
        currency=currency,
        confirm=True,
        off_session=True,
        metadata=metadata,
        idempotency_key=idempotency_key,
    )


def retrieve_charge(charge_id: str) -> stripe.Charge:
    return _call(stripe.Charge.retrieve, charge_id)


def retrieve_checkout_session(session_id: str) -> stripe.checkout.Session:
    return _call(stripe.checkout.Session.retrieve, session_id)


def expire_checkout_session(session_id: str) -> stripe.checkout.Session:
    return _call(stripe.checkout.Session.expire, session_id, idempotency_key=f"expire:{session_id}")


# --- Invoices ------------------------------------------------------------------------------------


def retrieve_invoice(invoice_id: str) -> stripe.Invoice:
    return _call(stripe.Invoice.retrieve, invoice_id)


def invoice_lines(invoice: Any) -> list[Any]:
    """Every line of the invoice: the embedded first page, then the rest through /lines."""
    lines = list(invoice["lines"]["data"])
    has_more = invoice["lines"]["has_more"]
    while has_more:
        page = _call(stripe.Invoice.list_lines, invoice["id"], starting_after=lines[-1]["id"], limit=100)
        lines.extend(page.data)
        has_more = page.has_more
    return lines


def list_invoices(*, customer_id: str, limit: int = 100) -> list[stripe.Invoice]:
    return list(_call(stripe.Invoice.list, customer=customer_id, limit=limit).data)


def retrieve_price(price_id: str) -> stripe.Price:
    return _call(stripe.Price.retrieve, price_id)


# --- Catalog ---------------------------------------------------------------------------------------


def retrieve_product(product_id: str) -> stripe.Product:
    return _call(stripe.Product.retrieve, product_id)


def create_product(*, product_id: str, name: str, metadata: dict[str, str]) -> stripe.Product:
    return _call(
        stripe.Product.create,
        id=product_id,
        name=name,
        metadata=metadata,
        idempotency_key=f"product:{product_id}",
    )


def prices_by_lookup_key(lookup_keys: list[str]) -> dict[str, stripe.Price]:
    """The active prices holding these lookup keys: {lookup_key: price}."""
    found: dict[str, stripe.Price] = {}
    for start in range(0, len(lookup_keys), 10):  # Stripe takes at most 10 per request
        page = _call(stripe.Price.list, lookup_keys=lookup_keys[start : start + 10], active=True, limit=100)
        found.update({price["lookup_key"]: price for price in page.data})
    return found


def create_price(*, idempotency_key: str, **params: Any) -> stripe.Price:
    return _call(stripe.Price.create, idempotency_key=idempotency_key, **params)


def list_meters() -> list[stripe.billing.Meter]:
    return list(_call(stripe.billing.Meter.list, status="active", limit=100).auto_paging_iter())


def create_meter(*, event_name: str, display_name: str) -> stripe.billing.Meter:
    return _call(
        stripe.billing.Meter.create,
        display_name=display_name,
        event_name=event_name,
        default_aggregation={"formula": "sum"},
        customer_mapping={"type": "by_id", "event_payload_key": "stripe_customer_id"},
        value_settings={"event_payload_key": "value"},
        idempotency_key=f"meter:{event_name}",
    )


# --- Meter events (overage credits) ----------------------------------------------------------------

DUPLICATE_METER_EVENT = "An event already exists with identifier"


def create_meter_event(
    *, event_name: str, customer_id: str, value: int, identifier: str, timestamp: int, attempt: int
) -> stripe.billing.MeterEvent:
    """One meter event. Its identifier makes it unique at Stripe for at least 24 h: a resend of one
    that arrived is refused as a duplicate (is_duplicate_meter_event). Each attempt has its own
    idempotency key, because each is stamped when sent (a key reused with another timestamp is an
    idempotency error); the library's own retries within an attempt reuse it."""
    return _call(
        stripe.billing.MeterEvent.create,
        event_name=event_name,
        payload={"stripe_customer_id": customer_id, "value": str(value)},
        identifier=identifier,
        timestamp=timestamp,
        idempotency_key=f"meter-event:{identifier}:{attempt}",
    )


def is_duplicate_meter_event(error: StripeRefused) -> bool:
    # Stripe's v1 answer has no code, only this message (tests/stripe_standin/README.md).
    return error.message.startswith(DUPLICATE_METER_EVENT)


def meter_total(*, meter_id: str, customer_id: str, start_time: int, end_time: int) -> float:
    """Stripe's aggregated value of the meter for one customer over [start, end), minute-aligned."""
    summaries = _call(
        stripe.billing.Meter.list_event_summaries,
        meter_id,
        customer=customer_id,
        start_time=start_time,
        end_time=end_time,
    )
    return sum(summary["aggregated_value"] for summary in summaries.auto_paging_iter())
