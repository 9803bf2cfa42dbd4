"""Fixtures for rollups and meter reporting: these commit for real (the rollup reads only what has
committed), against the Stripe stand-in."""

from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest
import time_machine
from django.db import transaction

from billing.services.catalog import load_catalog
from billing.services.catalog_sync import sync_stripe_catalog
from billing.services.checkout import ensure_customer
from orgs.models import Product
from tests.conftest import FREE_CREDITS, TEST_CATALOG, set_plan
from tests.factories import OrganizationFactory
from usage.services.events import record_usage_events

NOW = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
BILL_FROM = datetime(2026, 11, 20, 12, tzinfo=UTC)


@pytest.fixture
def live(stripe_standin, djstripe_account, settings):
    """Live billing from BILL_FROM, the clock at NOW, the catalog in the stand-in, and `new_org()`:
    an org on pro (the free plan's allowance this month: FREE_CREDITS) with a Stripe customer."""
    settings.BILLING_SHADOW_MODE = False
    settings.BILLING_BILL_FROM = BILL_FROM
    with time_machine.travel(NOW, tick=False) as clock:
        load_catalog(TEST_CATALOG)
        sync_stripe_catalog()
        red = Product.objects.get(slug="red")

        def new_org():
            org = OrganizationFactory()
            set_plan(org, "pro")
            with transaction.atomic():
                ensure_customer(org)
            return org

        def use(
            org, credits: str, *, at: str = "2026-11-20T14:00:00Z", product=red, metric="fix_run", key=None
        ):
            """Usage costing `credits` (fix_run costs 2.5 credits a unit)."""
            per_unit = {"fix_run": 2.5, "build_minute": 1}[metric]
            quantity = f"{float(credits) / per_unit:.6f}"
            use.count += 1
            record_usage_events(
                product=product,
                events=[
                    {
                        "event_id": key or f"e-{use.count}",
                        "org_id": org.public_id,
                        "metric": metric,
                        "quantity": quantity,
                        "occurred_at": at,
                    }
                ],
            )

        use.count = 0
        yield SimpleNamespace(standin=stripe_standin, clock=clock, new_org=new_org, use=use, red=red)


def beyond(overage: str) -> str:
    """Credits that use up the allowance of `live.new_org()` (the free plan's) and `overage` more."""
    return str(FREE_CREDITS + Decimal(overage))


def sent_values(standin, org=None) -> list[int]:
    """The meter events Stripe accepted (for one org's customer, if given): their values."""
    from billing.services.payments import customer_id_for

    customer = customer_id_for(org) if org is not None else None
    return [
        int(event["payload"]["value"])
        for event in standin.meter_events
        if customer is None or event["payload"]["stripe_customer_id"] == customer
    ]
