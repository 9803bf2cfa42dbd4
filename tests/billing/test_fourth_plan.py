"""Adding a plan is a catalog change and load_catalog: nothing in the code names a plan.

A fourth plan, `enterprise`, is added to the example catalog file and loaded with the command; it is
then published to Stripe (the stand-in), sold through checkout, becomes the org's plan from the
checkout and subscription webhooks, tops the month's allowance up to its credits and answers the
entitlement check.
"""

import tomllib
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.management import call_command

from billing.models import BillingAccount, CreditGrant, GrantType, Plan
from billing.services.catalog_sync import sync_stripe_catalog
from orgs.selectors import seat_limit
from tests.billing.conftest import deliver
from tests.conftest import OWNER

pytestmark = pytest.mark.django_db

EXAMPLE = settings.BASE_DIR / "catalog" / "example.toml"
ENTERPRISE = """
[plans.enterprise]
monthly_credits = "500000"
seats = 500
overage = true
monthly_price_cents = 99900
overage_cents_per_credit = "0.3"
"""


@pytest.fixture
def enterprise(tmp_path, stripe_standin, djstripe_account):
    """The example catalog with a fourth plan, loaded by the command and published to the stand-in."""
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(EXAMPLE.read_text() + ENTERPRISE)
    call_command("load_catalog", str(catalog))
    sync_stripe_catalog()
    return Plan.objects.get(name="enterprise")


def test_a_fourth_plan_is_a_catalog_entry_through_checkout_webhooks_allowance_and_check(
    api, org, enterprise, stripe_standin, post_webhook
):
    terms = tomllib.loads(ENTERPRISE)["plans"]["enterprise"]
    # Ranked above team by its price; the default plan is still free.
    assert [p.name for p in Plan.objects.all()] == ["free", "pro", "team", "enterprise"]
    assert Plan.objects.default().name == "free"

    checkout = api.post(
        f"/api/v1/orgs/{org.public_id}/checkout-sessions",
        {
            "plan": "enterprise",
            "user_id": OWNER,
            "success_url": "https://red.example/done",
            "cancel_url": "https://red.example/billing",
        },
        format="json",
    )
    assert checkout.status_code == 201, checkout.content
    (sent,) = stripe_standin.requests_to("POST", "/v1/checkout/sessions")
    assert [item["price"] for item in sent.params["line_items"]] == [
        enterprise.stripe_price_id,
        enterprise.stripe_overage_price_id,
    ]

    # The customer pays; Stripe sends both events (each recomputes the plan: one change).
    session = stripe_standin.complete_checkout(checkout.json()["id"])
    deliver(stripe_standin, post_webhook, "checkout.session.completed", session["id"])
    deliver(stripe_standin, post_webhook, "customer.subscription.created", session["subscription"])

    assert BillingAccount.objects.get(org=org).plan == enterprise
    assert seat_limit(org) == terms["seats"]
    first, *top_ups = CreditGrant.objects.filter(org=org, grant_type=GrantType.ALLOWANCE).order_by("id")
    # The month's first allowance (the default plan's, at the org's creation) topped up to enterprise's.
    assert [g.amount for g in top_ups] == [Decimal(terms["monthly_credits"]) - first.amount]

    check = api.post(
        "/api/v1/entitlements:check",
        {"org_id": org.public_id, "user_id": OWNER, "metric": "fix_run", "quantity": "1"},
        format="json",
    )
    assert check.status_code == 200, check.content
    body = check.json()
    assert (body["allowed"], body["plan"]) == (True, "enterprise")
    assert Decimal(body["posted_balance"]) == Decimal(terms["monthly_credits"])


def test_a_paid_plan_without_overage_is_sold_with_its_monthly_price_alone(
    api, org, tmp_path, stripe_standin, djstripe_account
):
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(
        EXAMPLE.read_text() + '\n[plans.fixed]\nmonthly_credits = "5000"\nmonthly_price_cents = 2900\n'
    )
    call_command("load_catalog", str(catalog))
    sync_stripe_catalog()
    fixed = Plan.objects.get(name="fixed")

    response = api.post(
        f"/api/v1/orgs/{org.public_id}/checkout-sessions",
        {
            "plan": "fixed",
            "user_id": OWNER,
            "success_url": "https://r.example/",
            "cancel_url": "https://r.example/",
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    (sent,) = stripe_standin.requests_to("POST", "/v1/checkout/sessions")
    assert [item["price"] for item in sent.params["line_items"]] == [fixed.stripe_price_id]
