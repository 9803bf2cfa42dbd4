"""Publish the catalog to Stripe: a product per paid plan, its monthly price, the overage meter and
each overage plan's metered price. Idempotent by lookup keys: a second run creates nothing."""

from decimal import Decimal
from typing import TypedDict

import stripe

from billing import stripe_api
from billing.models import Plan, StripeMeter

METER_EVENT = "overage_credits"


class Created(TypedDict):
    """What a sync created at Stripe: the meter's id (None: it existed), product ids, lookup keys."""

    meter: str | None
    products: list[str]
    prices: list[str]


def ensure_meter() -> tuple[StripeMeter, bool]:
    """The `overage_credits` meter (sum of raw events per customer), found or created."""
    existing = next((m for m in stripe_api.list_meters() if m["event_name"] == METER_EVENT), None)
    created = existing is None
    if existing is None:
        existing = stripe_api.create_meter(event_name=METER_EVENT, display_name="Overage credits")
    meter, _ = StripeMeter.objects.update_or_create(
        event_name=METER_EVENT, defaults={"stripe_id": existing["id"]}
    )
    return meter, created


def _ensure_product(plan: Plan) -> tuple[str, bool]:
    product_id = f"billing_plan_{plan.name}"
    try:
        stripe_api.retrieve_product(product_id)
        return product_id, False
    except stripe_api.StripeRefused as error:
        if not stripe_api.is_missing(error):
            raise
    stripe_api.create_product(
        product_id=product_id, name=f"{plan.name.title()} plan", metadata={"plan": plan.name}
    )
    return product_id, True


def _monthly_matches(price: stripe.Price, plan: Plan) -> bool:
    recurring = price["recurring"] or {}
    return (
        price["unit_amount"] == plan.monthly_price_cents
        and price["currency"] == plan.currency
        and recurring.get("interval") == "month"
        and recurring.get("usage_type") == "licensed"
    )


def _overage_matches(price: stripe.Price, plan: Plan, meter: StripeMeter) -> bool:
    recurring = price["recurring"] or {}
    return (
        Decimal(str(price["unit_amount_decimal"])) == plan.overage_cents_per_credit
        and price["currency"] == plan.currency
        and recurring.get("usage_type") == "metered"
        and recurring.get("meter") == meter.stripe_id
    )


def sync_stripe_catalog() -> Created:
    """Create what Stripe lacks and record the Stripe ids on the plans; returns what was created.

    A plan whose terms changed gets a new price that takes over the lookup key (Stripe prices are
    immutable); subscriptions on the old price keep it, and still map to the plan by its product.
    """
    meter, meter_created = ensure_meter()
    created: Created = {"meter": meter.stripe_id if meter_created else None, "products": [], "prices": []}
    for plan in Plan.objects.paid().order_by("name"):
        product_id, product_created = _ensure_product(plan)
        if product_created:
            created["products"].append(product_id)
        monthly_key, overage_key = f"plan_{plan.name}_monthly", f"plan_{plan.name}_overage"
        current = stripe_api.prices_by_lookup_key([monthly_key, overage_key])

        monthly = current.get(monthly_key)
        if monthly is None or not _monthly_matches(monthly, plan):
            monthly = stripe_api.create_price(
                product=product_id,
                currency=plan.currency,
                unit_amount=plan.monthly_price_cents,
                recurring={"interval": "month", "usage_type": "licensed"},
                lookup_key=monthly_key,
                transfer_lookup_key=True,
                metadata={"plan": plan.name},
                idempotency_key=f"price:{monthly_key}:{plan.monthly_price_cents}:{plan.currency}",
            )
            created["prices"].append(monthly_key)

        overage = None
        if plan.overage_allowed and plan.overage_cents_per_credit is not None:
            overage = current.get(overage_key)
            if overage is None or not _overage_matches(overage, plan, meter):
                overage = stripe_api.create_price(
                    product=product_id,
                    currency=plan.currency,
                    unit_amount_decimal=str(plan.overage_cents_per_credit.normalize()),
                    recurring={"interval": "month", "usage_type": "metered", "meter": meter.stripe_id},
                    lookup_key=overage_key,
                    transfer_lookup_key=True,
                    metadata={"plan": plan.name},
                    idempotency_key=f"price:{overage_key}:{plan.overage_cents_per_credit}:{plan.currency}:{meter.stripe_id}",
                )
                created["prices"].append(overage_key)

        ids = {
            "stripe_product_id": product_id,
            "stripe_price_id": monthly["id"],
            "stripe_overage_price_id": overage["id"] if overage else "",
        }
        changed = [field for field, value in ids.items() if getattr(plan, field) != value]
        if changed:
            for field in changed:
                setattr(plan, field, ids[field])
            plan.save(update_fields=changed)
    return created
