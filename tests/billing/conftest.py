"""Fixtures for the Stripe flows: the stand-in, the catalog published to it, an org with a customer."""

import pytest
from django.db import transaction

from billing.models import Plan
from billing.services.catalog_sync import sync_stripe_catalog
from billing.services.checkout import ensure_customer
from billing.services.payments import customer_id_for


@pytest.fixture
def stripe_catalog(stripe_standin, djstripe_account, catalog):
    """The test catalog, published to the Stripe stand-in: {plan name: Plan with its Stripe ids}."""
    sync_stripe_catalog()
    return {plan.name: plan for plan in Plan.objects.all()}


@pytest.fixture
def customer(org, stripe_catalog) -> str:
    """`org`'s Stripe customer id (created in the stand-in, linked through dj-stripe)."""
    with transaction.atomic():
        return ensure_customer(org)


def subscribe(standin, org, plan: Plan, status: str = "active", **fields) -> dict:
    """A subscription of the org to `plan` (its monthly and overage prices), in the stand-in."""
    prices = [plan.stripe_price_id, *([plan.stripe_overage_price_id] if plan.stripe_overage_price_id else [])]
    return standin.add_subscription(customer_id_for(org), items=prices, status=status, **fields)


def deliver(standin, post_webhook, event_type: str, obj) -> dict:
    """Post a signed event about `obj` (as the stand-in holds it now) through dj-stripe's view."""
    event = standin.event(event_type, obj)
    response = post_webhook(event)
    assert response.status_code == 200, response.content
    return event
