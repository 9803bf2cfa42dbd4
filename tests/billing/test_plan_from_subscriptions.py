import json

import pytest
from django.db import transaction
from django.test import Client
from djstripe.models import Event

from billing.models import (
    BillingAccount,
    CheckoutSession,
    CheckoutStatus,
    CreditGrant,
    GrantType,
    Plan,
    StripeEventProblem,
)
from billing.services.catalog_sync import sync_stripe_catalog
from billing.services.checkout import ensure_customer
from orgs.models import AuditEntry
from tests.billing.conftest import deliver, subscribe
from tests.concurrency import committing, run_concurrently
from tests.conftest import FREE_CREDITS, PRO_CREDITS
from tests.factories import OrganizationFactory
from tests.stripe_standin.fixtures import WEBHOOK_SECRET
from tests.stripe_standin.server import sign_webhook

pytestmark = pytest.mark.django_db


def plan_of(org):
    return BillingAccount.objects.get(org=org).plan.name


def test_a_new_pro_subscription_makes_the_org_pro_with_its_allowance(
    org, customer, stripe_standin, stripe_catalog, post_webhook
):
    subscription = subscribe(stripe_standin, org, stripe_catalog["pro"])

    deliver(stripe_standin, post_webhook, "customer.subscription.created", subscription["id"])

    assert plan_of(org) == "pro"
    # The month's free allowance topped up to pro's amount: one allowance, never a second full one.
    allowances = CreditGrant.objects.filter(org=org, grant_type=GrantType.ALLOWANCE).order_by("id")
    assert [grant.amount for grant in allowances] == [FREE_CREDITS, PRO_CREDITS - FREE_CREDITS]
    entry = AuditEntry.objects.get(org=org, action="billing.plan_changed")
    assert (entry.before, entry.after, entry.actor_type) == ({"plan": "free"}, {"plan": "pro"}, "stripe")


def test_metadata_never_decides_the_plan(org, customer, stripe_standin, stripe_catalog, post_webhook):
    subscription = subscribe(stripe_standin, org, stripe_catalog["pro"], metadata={"plan": "team"})

    deliver(stripe_standin, post_webhook, "customer.subscription.updated", subscription["id"])

    assert plan_of(org) == "pro"


def test_the_highest_plan_among_live_subscriptions_wins(
    org, customer, stripe_standin, stripe_catalog, post_webhook
):
    subscribe(stripe_standin, org, stripe_catalog["pro"])
    team = subscribe(stripe_standin, org, stripe_catalog["team"], status="past_due")
    subscribe(stripe_standin, org, stripe_catalog["team"], status="canceled")

    deliver(stripe_standin, post_webhook, "customer.subscription.updated", team["id"])

    assert plan_of(org) == "team"


def test_when_stripe_ends_the_subscription_the_plan_becomes_free(
    org, customer, stripe_standin, stripe_catalog, post_webhook
):
    subscription = subscribe(stripe_standin, org, stripe_catalog["pro"])
    deliver(stripe_standin, post_webhook, "customer.subscription.created", subscription["id"])
    stripe_standin.update(subscription["id"], status="canceled")

    deliver(stripe_standin, post_webhook, "customer.subscription.deleted", subscription["id"])

    assert plan_of(org) == "free"


def test_an_out_of_order_event_cannot_move_the_plan_back(
    org, customer, stripe_standin, stripe_catalog, post_webhook
):
    subscription = subscribe(stripe_standin, org, stripe_catalog["pro"])
    created = stripe_standin.event("customer.subscription.created", subscription["id"])
    stripe_standin.update(subscription["id"], status="canceled")
    deliver(stripe_standin, post_webhook, "customer.subscription.deleted", subscription["id"])

    post_webhook(created)  # the older event arrives last

    assert plan_of(org) == "free"


def test_the_same_event_five_times_changes_state_once(
    org, customer, stripe_standin, stripe_catalog, post_webhook
):
    subscription = subscribe(stripe_standin, org, stripe_catalog["pro"])
    event = stripe_standin.event("customer.subscription.created", subscription["id"])

    statuses = [post_webhook(event).status_code for _ in range(5)]

    assert statuses == [200] * 5
    assert Event.objects.filter(id=event["id"]).count() == 1
    assert AuditEntry.objects.filter(org=org, action="billing.plan_changed").count() == 1
    assert CreditGrant.objects.filter(org=org, grant_type=GrantType.ALLOWANCE).count() == 2


def test_checkout_completion_links_the_subscription_and_never_creates_one(
    api, org, stripe_standin, stripe_catalog, post_webhook
):
    body = {
        "plan": "team",
        "success_url": "https://x.example/ok",
        "cancel_url": "https://x.example/no",
        "user_id": "user-owner",
    }
    session_id = api.post(f"/api/v1/orgs/{org.public_id}/checkout-sessions", body, format="json").json()["id"]
    completed = stripe_standin.complete_checkout(session_id)

    deliver(stripe_standin, post_webhook, "checkout.session.completed", session_id)

    session = CheckoutSession.objects.get(stripe_id=session_id)
    assert (session.status, session.subscription_id) == (CheckoutStatus.COMPLETE, completed["subscription"])
    assert plan_of(org) == "team"
    assert not stripe_standin.requests_to("POST", "/v1/subscriptions")


def test_an_event_for_a_customer_no_org_owns_is_recorded_not_retried(
    stripe_standin, stripe_catalog, post_webhook
):
    stranger = stripe_standin.add_customer(email="who@nowhere.example")
    subscription = stripe_standin.add_subscription(stranger, items=[stripe_catalog["pro"].stripe_price_id])

    event = deliver(stripe_standin, post_webhook, "customer.subscription.created", subscription["id"])

    problem = StripeEventProblem.objects.get()
    assert (problem.event_id, problem.event_type) == (event["id"], "customer.subscription.created")
    assert "No organization" in problem.problem


@committing
def test_concurrent_deliveries_of_one_event_change_state_once(
    djstripe_webhook_endpoint, stripe_standin, catalog
):
    sync_stripe_catalog()
    org = OrganizationFactory()
    with transaction.atomic():
        ensure_customer(org)
    subscription = subscribe(stripe_standin, org, Plan.objects.get(name="pro"))
    body = json.dumps(stripe_standin.event("customer.subscription.created", subscription["id"]))
    path = f"/stripe/webhook/{djstripe_webhook_endpoint.djstripe_uuid}/"

    def deliver_once(_):
        return (
            Client()
            .post(path, body, content_type="application/json", headers=sign_webhook(body, WEBHOOK_SECRET))
            .status_code
        )

    statuses = run_concurrently(deliver_once, 5)

    assert statuses == [200] * 5
    assert AuditEntry.objects.filter(org=org, action="billing.plan_changed").count() == 1
    assert plan_of(org) == "pro"
