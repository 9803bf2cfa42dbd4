import json
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.management import call_command

from billing.models import Plan, StripeMeter
from billing.services.catalog_sync import sync_stripe_catalog

pytestmark = pytest.mark.django_db


def test_it_publishes_products_prices_and_the_meter(stripe_standin, catalog):
    created = sync_stripe_catalog()

    meter = stripe_standin.get(StripeMeter.objects.get(event_name="overage_credits").stripe_id)
    assert (meter["event_name"], meter["default_aggregation"]["formula"]) == ("overage_credits", "sum")
    assert meter["customer_mapping"] == {"event_payload_key": "stripe_customer_id", "type": "by_id"}
    assert sorted(created["products"]) == ["billing_plan_pro", "billing_plan_team"]
    pro = Plan.objects.get(name="pro")
    monthly, overage = (
        stripe_standin.get(pro.stripe_price_id),
        stripe_standin.get(pro.stripe_overage_price_id),
    )
    assert (monthly["lookup_key"], monthly["unit_amount"], monthly["recurring"]["usage_type"]) == (
        "plan_pro_monthly",
        4900,
        "licensed",
    )
    assert (overage["lookup_key"], Decimal(str(overage["unit_amount_decimal"]))) == (
        "plan_pro_overage",
        Decimal("0.5"),
    )
    assert (overage["recurring"]["usage_type"], overage["recurring"]["meter"]) == ("metered", meter["id"])
    assert Plan.objects.get(name="free").stripe_price_id == ""  # nothing to sell
    writes = stripe_standin.requests_to("POST", "/v1/")
    assert all(r.idempotency_key for r in writes)
    assert {r.stripe_version for r in stripe_standin.requests} == {settings.STRIPE_API_VERSION}


def test_running_it_twice_creates_nothing(stripe_standin, catalog):
    sync_stripe_catalog()
    before = len(stripe_standin.requests_to("POST", "/v1/"))

    created = sync_stripe_catalog()

    assert created == {"meter": None, "products": [], "prices": []}
    assert len(stripe_standin.requests_to("POST", "/v1/")) == before


def test_a_changed_price_takes_over_the_lookup_key(stripe_standin, catalog):
    sync_stripe_catalog()
    old_price = Plan.objects.get(name="pro").stripe_price_id
    Plan.objects.filter(name="pro").update(monthly_price_cents=5900)

    created = sync_stripe_catalog()

    new_price = Plan.objects.get(name="pro").stripe_price_id
    assert created["prices"] == ["plan_pro_monthly"] and new_price != old_price
    assert stripe_standin.get(new_price)["lookup_key"] == "plan_pro_monthly"
    assert stripe_standin.get(old_price)["lookup_key"] is None
    assert stripe_standin.get(new_price)["product"] == stripe_standin.get(old_price)["product"]


def test_the_command_prints_what_it_created(stripe_standin, catalog, capsys):
    call_command("sync_stripe_catalog")
    first = json.loads(capsys.readouterr().out)
    call_command("sync_stripe_catalog")

    assert first["meter"] and len(first["prices"]) == 4
    assert json.loads(capsys.readouterr().out) == {"meter": None, "products": [], "prices": []}
