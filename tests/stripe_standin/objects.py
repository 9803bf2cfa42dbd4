"""Builders for real-shaped Stripe objects in the pinned API version (2026-05-27.dahlia).

Each builder returns a plain dict with every field Stripe documents for that object in that version
(the field lists follow stripe-python 15.6's generated types and the API reference; fields added
after 2026-05-27 are left out). Nested objects are as Stripe sends them: ids where Stripe sends ids
(`invoice.customer`), whole objects where Stripe embeds them (`subscription.items.data[].price`).

Builders are pure: they know nothing of the stand-in's state. The server composes them.
"""

import hashlib
import random
import string
import time
from collections.abc import Iterable

API_VERSION = "2026-05-27.dahlia"
CHECKOUT_SESSION_LIFETIME = 24 * 3600

_ALPHABET = string.ascii_letters + string.digits
# Lengths of the random part, as Stripe's ids have them (`cus_Na6dX7aXxi11N4`,
# `sub_1MowQVLkdIwHu7ixeRlqHVzs`, `mtr_test_61Q8nQMqIFK9fRQmr41CMAXJrFdZ5MnA`).
_ID_LENGTHS = {"cus": 14, "prod": 14, "si": 14, "acct": 16, "req": 14}


# Ids come from the system's randomness, never the seeded module: a test framework that seeds
# `random` per example (hypothesis does) would otherwise get the same "fresh" ids again.
_RANDOM = random.SystemRandom()


def new_id(prefix: str, length: int | None = None) -> str:
    """A fresh Stripe-style id: `prefix_` and a random alphanumeric tail."""
    length = length or _ID_LENGTHS.get(prefix.split("_")[0], 24)
    return f"{prefix}_{''.join(_RANDOM.choices(_ALPHABET, k=length))}"


def stable_id(prefix: str, *parts: object, length: int = 32) -> str:
    """An id derived from `parts`, so the same question gets the same id (pagination needs that)."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()
    return f"{prefix}_{digest[:length]}"


def now() -> int:
    return int(time.time())


def list_object(data: list, url: str, *, has_more: bool = False, total_count: int | None = None) -> dict:
    """Stripe's list envelope. `total_count` only where Stripe sends it (embedded invoice lines)."""
    envelope = {"object": "list", "data": data, "has_more": has_more, "url": url}
    if total_count is not None:
        envelope["total_count"] = total_count
    return envelope


def error_body(
    message: str, *, type: str = "invalid_request_error", code: str | None = None, param: str | None = None
) -> dict:
    error = {"type": type, "message": message}
    if code:
        error["code"] = code
        error["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
    if param:
        error["param"] = param
    return {"error": error}


def blank_address() -> dict:
    return {"city": None, "country": None, "line1": None, "line2": None, "postal_code": None, "state": None}


# --- Account and customers ------------------------------------------------------------------


def account(*, id: str | None = None, email: str = "billing@example.com", **overrides) -> dict:
    """The platform's own (standard) account, as `GET /v1/account` answers it."""
    id = id or new_id("acct")
    obj = {
        "id": id,
        "object": "account",
        "business_profile": {
            "annual_revenue": None,
            "estimated_worker_count": None,
            "mcc": "5734",
            "minority_owned_business_designation": None,
            "name": "Billing control plane (tests)",
            "product_description": None,
            "support_address": None,
            "support_email": None,
            "support_phone": None,
            "support_url": None,
            "url": "https://billing.example",
        },
        "business_type": "company",
        "capabilities": {"card_payments": "active", "transfers": "active"},
        "charges_enabled": True,
        "controller": {"type": "account"},
        "country": "US",
        "created": 1704067200,
        "default_currency": "usd",
        "details_submitted": True,
        "email": email,
        "external_accounts": list_object([], f"/v1/accounts/{id}/external_accounts", total_count=0),
        "future_requirements": _requirements(),
        "metadata": {},
        "payouts_enabled": True,
        "requirements": _requirements(),
        "settings": {
            "bacs_debit_payments": {"display_name": None, "service_user_number": None},
            "branding": {"icon": None, "logo": None, "primary_color": None, "secondary_color": None},
            "card_issuing": {"tos_acceptance": {"date": None, "ip": None}},
            "card_payments": {
                "decline_on": {"avs_failure": False, "cvc_failure": False},
                "statement_descriptor_prefix": None,
                "statement_descriptor_prefix_kana": None,
                "statement_descriptor_prefix_kanji": None,
            },
            "dashboard": {"display_name": "Billing control plane", "timezone": "Etc/UTC"},
            "invoices": {"default_account_tax_ids": None, "hosted_payment_method_save": "offer"},
            "payments": {
                "statement_descriptor": "BILLING TESTS",
                "statement_descriptor_kana": None,
                "statement_descriptor_kanji": None,
            },
            "payouts": {
                "debit_negative_balances": True,
                "schedule": {"delay_days": 2, "interval": "daily"},
                "statement_descriptor": None,
            },
            "sepa_debit_payments": {},
        },
        "tos_acceptance": {"date": 1704067200, "ip": "127.0.0.1", "user_agent": None},
        "type": "standard",
    }
    obj.update(overrides)
    return obj


def _requirements() -> dict:
    return {
        "alternatives": [],
        "current_deadline": None,
        "currently_due": [],
        "disabled_reason": None,
        "errors": [],
        "eventually_due": [],
        "past_due": [],
        "pending_verification": [],
    }


def customer(
    *,
    id: str | None = None,
    email: str | None = None,
    name: str | None = None,
    metadata: dict | None = None,
    created: int | None = None,
    **overrides,
) -> dict:
    id = id or new_id("cus")
    obj = {
        "id": id,
        "object": "customer",
        "address": None,
        "balance": 0,
        "business_name": None,
        "created": created or now(),
        "currency": None,
        "customer_account": None,
        "default_source": None,
        "delinquent": False,
        "description": None,
        "discount": None,
        "email": email,
        "individual_name": None,
        "invoice_prefix": "".join(_RANDOM.choices(string.ascii_uppercase + string.digits, k=8)),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": dict(metadata or {}),
        "name": name,
        "next_invoice_sequence": 1,
        "phone": None,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }
    obj.update(overrides)
    return obj


def customer_balance_transaction(
    *,
    customer: str,
    amount: int,
    currency: str,
    ending_balance: int,
    description: str | None = None,
    metadata: dict | None = None,
    created: int | None = None,
) -> dict:
    return {
        "id": new_id("cbtxn"),
        "object": "customer_balance_transaction",
        "amount": amount,
        "checkout_session": None,
        "created": created or now(),
        "credit_note": None,
        "currency": currency,
        "customer": customer,
        "customer_account": None,
        "description": description,
        "ending_balance": ending_balance,
        "invoice": None,
        "livemode": False,
        "metadata": dict(metadata or {}),
        "type": "adjustment",
    }


# --- Catalog: products, prices, meters --------------------------------------------------------


def product(
    *,
    id: str | None = None,
    name: str = "Plan",
    metadata: dict | None = None,
    created: int | None = None,
    **overrides,
) -> dict:
    created = created or now()
    obj = {
        "id": id or new_id("prod"),
        "object": "product",
        "active": True,
        "created": created,
        "default_price": None,
        "description": None,
        "images": [],
        "livemode": False,
        "marketing_features": [],
        "metadata": dict(metadata or {}),
        "name": name,
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": None,
        "tax_code": None,
        "type": "service",
        "unit_label": None,
        "updated": created,
        "url": None,
    }
    obj.update(overrides)
    return obj


def price(
    *,
    product: str,
    id: str | None = None,
    unit_amount: int | None = None,
    unit_amount_decimal: str | None = None,
    currency: str = "usd",
    interval: str | None = "month",
    interval_count: int = 1,
    usage_type: str = "licensed",
    meter: str | None = None,
    lookup_key: str | None = None,
    nickname: str | None = None,
    metadata: dict | None = None,
    created: int | None = None,
    **overrides,
) -> dict:
    """A per-unit price: recurring (licensed or metered on a billing meter) unless `interval` is None.

    Stripe stores `unit_amount_decimal` as a decimal string and `unit_amount` as the integer when the
    decimal is whole, else null.
    """
    if unit_amount_decimal is None and unit_amount is not None:
        unit_amount_decimal = str(unit_amount)
    if unit_amount is None and unit_amount_decimal is not None and _is_whole(unit_amount_decimal):
        unit_amount = int(float(unit_amount_decimal))
    recurring = None
    if interval is not None:
        recurring = {
            "interval": interval,
            "interval_count": interval_count,
            "meter": meter,
            "trial_period_days": None,
            "usage_type": usage_type,
        }
    obj = {
        "id": id or new_id("price"),
        "object": "price",
        "active": True,
        "billing_scheme": "per_unit",
        "created": created or now(),
        "currency": currency,
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": lookup_key,
        "metadata": dict(metadata or {}),
        "nickname": nickname,
        "product": product,
        "recurring": recurring,
        "tax_behavior": "unspecified",
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "recurring" if recurring else "one_time",
        "unit_amount": unit_amount,
        "unit_amount_decimal": unit_amount_decimal,
    }
    obj.update(overrides)
    return obj


def _is_whole(decimal_string: str) -> bool:
    integer, _, fraction = decimal_string.partition(".")
    return integer.lstrip("-").isdigit() and set(fraction) <= {"0"}


def plan_from_price(price: dict) -> dict:
    """The legacy `plan` Stripe still puts beside `price` on subscription items."""
    recurring = price["recurring"] or {}
    return {
        "id": price["id"],
        "object": "plan",
        "active": price["active"],
        "amount": price["unit_amount"],
        "amount_decimal": price["unit_amount_decimal"],
        "billing_scheme": price["billing_scheme"],
        "created": price["created"],
        "currency": price["currency"],
        "interval": recurring.get("interval"),
        "interval_count": recurring.get("interval_count"),
        "livemode": price["livemode"],
        "metadata": price["metadata"],
        "meter": recurring.get("meter"),
        "nickname": price["nickname"],
        "product": price["product"],
        "tiers_mode": None,
        "transform_usage": None,
        "trial_period_days": None,
        "usage_type": recurring.get("usage_type"),
    }


def meter(
    *,
    event_name: str,
    display_name: str | None = None,
    id: str | None = None,
    formula: str = "sum",
    customer_payload_key: str = "stripe_customer_id",
    value_payload_key: str = "value",
    event_time_window: str | None = None,
    created: int | None = None,
    **overrides,
) -> dict:
    created = created or now()
    obj = {
        "id": id or new_id("mtr_test", 32),
        "object": "billing.meter",
        "created": created,
        "customer_mapping": {"event_payload_key": customer_payload_key, "type": "by_id"},
        "default_aggregation": {"formula": formula},
        "display_name": display_name or event_name,
        "event_name": event_name,
        "event_time_window": event_time_window,
        "livemode": False,
        "status": "active",
        "status_transitions": {"deactivated_at": None},
        "updated": created,
        "value_settings": {"event_payload_key": value_payload_key},
    }
    obj.update(overrides)
    return obj


def meter_event(
    *,
    event_name: str,
    payload: dict,
    identifier: str | None = None,
    timestamp: int | None = None,
    created: int | None = None,
) -> dict:
    created = created or now()
    return {
        "object": "billing.meter_event",
        "created": created,
        "event_name": event_name,
        "identifier": identifier or new_id("mevt", 24),
        "livemode": False,
        "payload": {key: str(value) for key, value in payload.items()},
        "timestamp": created if timestamp is None else timestamp,
    }


def meter_event_summary(
    *, meter: str, customer: str, start_time: int, end_time: int, aggregated_value: float
) -> dict:
    return {
        # Stable, so that paging through summaries with starting_after works.
        "id": stable_id("mtrusg_test", meter, customer, start_time, end_time, length=40),
        "object": "billing.meter_event_summary",
        "aggregated_value": int(aggregated_value)
        if float(aggregated_value).is_integer()
        else aggregated_value,
        "end_time": end_time,
        "livemode": False,
        "meter": meter,
        "start_time": start_time,
    }


# --- Subscriptions ----------------------------------------------------------------------------


def subscription_item(
    *,
    subscription: str,
    price: dict,
    quantity: int | None = 1,
    current_period_start: int,
    current_period_end: int,
    id: str | None = None,
    created: int | None = None,
    metadata: dict | None = None,
) -> dict:
    """Since basil the billing period lives on the item. Metered items carry no quantity."""
    metered = (price.get("recurring") or {}).get("usage_type") == "metered"
    return {
        "id": id or new_id("si"),
        "object": "subscription_item",
        "billed_until": current_period_end,
        "billing_thresholds": None,
        "created": created or current_period_start,
        "current_period_end": current_period_end,
        "current_period_start": current_period_start,
        "discounts": [],
        "metadata": dict(metadata or {}),
        "plan": plan_from_price(price),
        "price": price,
        "quantity": None if metered else quantity,
        "subscription": subscription,
        "tax_rates": [],
    }


def subscription(
    *,
    customer: str,
    prices: Iterable[dict],
    id: str | None = None,
    status: str = "active",
    quantities: dict[str, int] | None = None,
    current_period_start: int | None = None,
    current_period_end: int | None = None,
    created: int | None = None,
    metadata: dict | None = None,
    latest_invoice: str | None = None,
    **overrides,
) -> dict:
    """A subscription on `prices` (whole price objects), one item each, in a monthly period."""
    id = id or new_id("sub")
    start = current_period_start or created or now()
    end = current_period_end or start + 30 * 24 * 3600
    prices = list(prices)
    items = [
        subscription_item(
            subscription=id,
            price=p,
            quantity=(quantities or {}).get(p["id"], 1),
            current_period_start=start,
            current_period_end=end,
        )
        for p in prices
    ]
    obj = {
        "id": id,
        "object": "subscription",
        "application": None,
        "application_fee_percent": None,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": start,
        "billing_cycle_anchor_config": None,
        "billing_mode": {
            "flexible": {"proration_discounts": "included"},
            "type": "flexible",
            "updated_at": start,
        },
        "billing_schedules": [],
        "billing_thresholds": None,
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": "charge_automatically",
        "created": created or start,
        "currency": prices[0]["currency"] if prices else "usd",
        "customer": customer,
        "customer_account": None,
        "days_until_due": None,
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": [],
        "ended_at": None,
        "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
        "items": list_object(items, f"/v1/subscription_items?subscription={id}", total_count=len(items)),
        "latest_invoice": latest_invoice,
        "livemode": False,
        "metadata": dict(metadata or {}),
        "next_pending_invoice_item_invoice": None,
        "on_behalf_of": None,
        "pause_collection": None,
        "payment_settings": {
            "payment_method_options": None,
            "payment_method_types": None,
            "save_default_payment_method": "off",
        },
        "pending_invoice_item_interval": None,
        "pending_setup_intent": None,
        "pending_update": None,
        "schedule": None,
        "start_date": start,
        "status": status,
        "test_clock": None,
        "transfer_data": None,
        "trial_end": None,
        "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
        "trial_start": None,
    }
    obj.update(overrides)
    return obj


# --- Invoices ---------------------------------------------------------------------------------

INVOICE_LINES_PAGE = 10  # Stripe embeds the first ten lines in the invoice


def invoice_line_item(
    *,
    invoice: str,
    price: dict,
    amount: int,
    quantity: int | None = None,
    subscription: str | None = None,
    subscription_item: str | None = None,
    period_start: int,
    period_end: int,
    description: str | None = None,
    id: str | None = None,
) -> dict:
    """A line generated by a subscription item (or, without `subscription`, by an invoice item).

    dahlia: the price is at `pricing.price_details.price`, the generator at `parent`.
    """
    if quantity is None:
        quantity = 1
    if subscription:
        parent = {
            "type": "subscription_item_details",
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": None,
                "proration": False,
                "proration_details": {"credited_items": None},
                "subscription": subscription,
                "subscription_item": subscription_item or new_id("si"),
            },
        }
    else:
        parent = {
            "type": "invoice_item_details",
            "invoice_item_details": {
                "invoice_item": new_id("ii"),
                "proration": False,
                "proration_details": {"credited_items": None},
                "subscription": None,
            },
            "subscription_item_details": None,
        }
    return {
        "id": id or new_id("il"),
        "object": "line_item",
        "amount": amount,
        "currency": price["currency"],
        "description": description or f"{quantity} × {price.get('nickname') or price['id']}",
        "discount_amounts": [],
        "discountable": True,
        "discounts": [],
        "invoice": invoice,
        "livemode": False,
        "metadata": {},
        "parent": parent,
        "period": {"end": period_end, "start": period_start},
        "pretax_credit_amounts": [],
        "pricing": {
            "price_details": {"price": price["id"], "product": price["product"]},
            "type": "price_details",
            "unit_amount_decimal": price["unit_amount_decimal"],
        },
        "quantity": quantity,
        "quantity_decimal": str(quantity),
        "subscription": subscription,
        "subtotal": amount,
        "taxes": [],
    }


def invoice(
    *,
    customer: dict,
    lines: list[dict],
    id: str | None = None,
    subscription: str | None = None,
    status: str = "open",
    amount_paid: int | None = None,
    attempt_count: int | None = None,
    billing_reason: str | None = None,
    created: int | None = None,
    period_start: int | None = None,
    period_end: int | None = None,
    metadata: dict | None = None,
    **overrides,
) -> dict:
    """An invoice of `lines` (all of them; the server shows the first ten, like Stripe).

    dahlia: no `subscription` and no `paid`; the subscription is at
    `parent.subscription_details.subscription` and `status` says whether it is paid.
    """
    id = id or new_id("in")
    created = created or now()
    total = sum(line["amount"] for line in lines)
    if amount_paid is None:
        amount_paid = total if status == "paid" else 0
    finalized = status != "draft"
    number = (
        f"{customer.get('invoice_prefix') or 'TEST0000'}-{_RANDOM.randint(1, 9999):04d}"
        if finalized
        else None
    )
    obj = {
        "id": id,
        "object": "invoice",
        "account_country": "US",
        "account_name": "Billing control plane (tests)",
        "account_tax_ids": None,
        "amount_due": total,
        "amount_overpaid": 0,
        "amount_paid": amount_paid,
        "amount_paid_off_stripe": 0,
        "amount_remaining": max(total - amount_paid, 0) if status not in ("void", "uncollectible") else 0,
        "amount_shipping": 0,
        "application": None,
        "attempt_count": attempt_count if attempt_count is not None else (1 if status != "draft" else 0),
        "attempted": status != "draft",
        "auto_advance": status in ("draft", "open"),
        "automatic_tax": {
            "disabled_reason": None,
            "enabled": False,
            "liability": None,
            "provider": None,
            "status": None,
        },
        # A draft that advances on its own finalizes about an hour after it opens.
        "automatically_finalizes_at": created + 3600 if status == "draft" else None,
        "billing_reason": billing_reason or ("subscription_cycle" if subscription else "manual"),
        "collection_method": "charge_automatically",
        "confirmation_secret": None,
        "created": created,
        "currency": lines[0]["currency"] if lines else "usd",
        "custom_fields": None,
        "customer": customer["id"],
        "customer_account": None,
        "customer_address": customer.get("address"),
        "customer_email": customer.get("email"),
        "customer_name": customer.get("name"),
        "customer_phone": customer.get("phone"),
        "customer_shipping": customer.get("shipping"),
        "customer_tax_exempt": customer.get("tax_exempt", "none"),
        "customer_tax_ids": [],
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": [],
        "due_date": None,
        "effective_at": created if finalized else None,
        "ending_balance": 0 if finalized else None,
        "footer": None,
        "from_invoice": None,
        "hosted_invoice_url": f"https://invoice.stripe.com/i/acct_test/test_{id}" if finalized else None,
        "invoice_pdf": f"https://pay.stripe.com/invoice/acct_test/test_{id}/pdf" if finalized else None,
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "latest_revision": None,
        "lines": list_object(lines, f"/v1/invoices/{id}/lines", total_count=len(lines)),
        "livemode": False,
        "metadata": dict(metadata or {}),
        "next_payment_attempt": created + 3 * 24 * 3600 if status == "open" else None,
        "number": number,
        "on_behalf_of": None,
        "parent": (
            {
                "quote_details": None,
                "subscription_details": {
                    "metadata": {},
                    "subscription": subscription,
                    "subscription_proration_date": None,
                },
                "type": "subscription_details",
            }
            if subscription
            else None
        ),
        "payment_settings": {
            "default_mandate": None,
            "payment_method_options": None,
            "payment_method_types": None,
        },
        "period_end": period_end or created,
        "period_start": period_start or created,
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": None,
        "rendering": None,
        "shipping_cost": None,
        "shipping_details": None,
        "starting_balance": 0,
        "statement_descriptor": None,
        "status": status,
        "status_transitions": {
            "finalized_at": created if finalized else None,
            "marked_uncollectible_at": created if status == "uncollectible" else None,
            "paid_at": created if status == "paid" else None,
            "voided_at": created if status == "void" else None,
        },
        "subtotal": total,
        "subtotal_excluding_tax": total,
        "test_clock": None,
        "threshold_reason": None,
        "total": total,
        "total_discount_amounts": [],
        "total_excluding_tax": total,
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
        "webhooks_delivered_at": created if finalized else None,
    }
    obj.update(overrides)
    return obj


# --- Checkout ---------------------------------------------------------------------------------


def checkout_session(
    *,
    line_items: list[dict],
    mode: str = "subscription",
    customer: str | None = None,
    customer_email: str | None = None,
    success_url: str | None = None,
    cancel_url: str | None = None,
    metadata: dict | None = None,
    client_reference_id: str | None = None,
    id: str | None = None,
    created: int | None = None,
    expires_at: int | None = None,
    currency: str | None = None,
) -> dict:
    """An open hosted Checkout Session. `line_items` are checkout line items (see checkout_line_item)."""
    id = id or new_id("cs_test", 58)
    created = created or now()
    subtotal = sum(item["amount_subtotal"] for item in line_items)
    return {
        "id": id,
        "object": "checkout.session",
        "adaptive_pricing": None,
        "after_expiration": None,
        "allow_promotion_codes": None,
        "amount_subtotal": subtotal,
        "amount_total": subtotal,
        "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
        "billing_address_collection": None,
        "cancel_url": cancel_url,
        "client_reference_id": client_reference_id,
        "client_secret": None,
        "collected_information": None,
        "consent": None,
        "consent_collection": None,
        "created": created,
        "currency": currency or (line_items[0]["currency"] if line_items else None),
        "currency_conversion": None,
        "custom_fields": [],
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "customer": customer,
        "customer_account": None,
        "customer_creation": None if customer else "always",
        "customer_details": None,
        "customer_email": customer_email,
        "discounts": [],
        "expires_at": expires_at or created + CHECKOUT_SESSION_LIFETIME,
        "invoice": None,
        "invoice_creation": None,
        "livemode": False,
        "locale": None,
        "metadata": dict(metadata or {}),
        "mode": mode,
        "origin_context": None,
        "payment_intent": None,
        "payment_link": None,
        "payment_method_collection": "always",
        "payment_method_configuration_details": None,
        "payment_method_options": {},
        "payment_method_types": ["card"],
        "payment_status": "unpaid",
        "permissions": None,
        "phone_number_collection": {"enabled": False},
        "recovered_from": None,
        "saved_payment_method_options": {
            "allow_redisplay_filters": ["always"],
            "payment_method_remove": "disabled",
            "payment_method_save": None,
        },
        "setup_intent": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "shipping_options": [],
        "status": "open",
        "submit_type": None,
        "subscription": None,
        "success_url": success_url,
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted_page",
        "url": f"https://checkout.stripe.com/c/pay/{id}#{new_id('fid', 40)[4:]}",
        "wallet_options": None,
    }


def checkout_line_item(*, price: dict, quantity: int | None) -> dict:
    """A Checkout Session line item (`item` object). Metered prices have no quantity and no amount."""
    metered = (price.get("recurring") or {}).get("usage_type") == "metered"
    amount = 0 if metered else (price["unit_amount"] or 0) * (quantity or 1)
    return {
        "id": new_id("li"),
        "object": "item",
        "amount_discount": 0,
        "amount_subtotal": amount,
        "amount_tax": 0,
        "amount_total": amount,
        "currency": price["currency"],
        "description": price.get("nickname") or price["id"],
        "metadata": {},
        "price": price,
        "quantity": None if metered else (quantity or 1),
    }


# --- Events -----------------------------------------------------------------------------------


def event(
    type: str,
    obj: dict,
    *,
    previous_attributes: dict | None = None,
    id: str | None = None,
    created: int | None = None,
    api_version: str = API_VERSION,
    request_id: str | None = None,
    idempotency_key: str | None = None,
    pending_webhooks: int = 1,
) -> dict:
    """An event envelope as Stripe delivers it to a webhook endpoint."""
    data = {"object": obj}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    return {
        "id": id or new_id("evt"),
        "object": "event",
        "api_version": api_version,
        "created": created or now(),
        "data": data,
        "livemode": False,
        "pending_webhooks": pending_webhooks,
        "request": {"id": request_id, "idempotency_key": idempotency_key},
        "type": type,
    }
