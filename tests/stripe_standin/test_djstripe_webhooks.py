"""dj-stripe 2.11 processing webhooks offline against the stand-in: what it calls, what it stores.

README.md beside this file summarises what these tests pin down.
"""

import json
import pathlib
import time
from types import SimpleNamespace

import pytest
import stripe
from djstripe.exceptions import InvalidStripeAPIKey
from djstripe.models import (
    Account,
    APIKey,
    Customer,
    Event,
    Invoice,
    LineItem,
    Price,
    Product,
    Session,
    Subscription,
    SubscriptionItem,
    WebhookEndpoint,
)

from billing.models import ReceivedStripeEvent, StripeEventStatus
from billing.services.stripe_events import process_stripe_event
from tests.factories import OrganizationFactory
from tests.stripe_standin.fixtures import STANDIN_API_KEY, WEBHOOK_SECRET
from tests.stripe_standin.server import sign_webhook

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def dj_stripe_alone():
    """These tests pin down what dj-stripe itself calls and stores: the project's receivers (which
    re-read objects of their own) are disconnected here and tested in tests/billing."""
    from djstripe.signals import WEBHOOK_SIGNALS

    from billing import receivers
    from usage import receivers as usage_receivers

    hooks = [
        receivers.on_checkout_completed,
        receivers.on_subscription_changed,
        receivers.on_invoice_event,
        usage_receivers.on_invoice_created,
    ]
    disconnected = [
        (signal, hook)
        for signal in WEBHOOK_SIGNALS.values()
        for hook in hooks
        if signal.disconnect(hook, sender=Event)
    ]
    yield
    for signal, hook in disconnected:
        signal.connect(hook, sender=Event)


FIXTURES = pathlib.Path(__file__).parent.parent / "fixtures" / "stripe"


@pytest.fixture
def billing(stripe_standin):
    """An org, and in the stand-in its customer (linked by dj-stripe's metadata key), a Pro subscription
    (licensed + metered overage price) and an open invoice for it."""
    org = OrganizationFactory()
    customer = stripe_standin.add_customer(
        email=org.billing_email, name=org.name, metadata={"djstripe_subscriber": str(org.pk)}
    )
    meter = stripe_standin.add_meter(event_name="overage_credits")
    licensed = stripe_standin.add_price(unit_amount=4900, lookup_key="pro", nickname="Pro")
    metered = stripe_standin.add_price(
        product=licensed["product"], unit_amount_decimal="0.5", usage_type="metered", meter=meter["id"]
    )
    subscription = stripe_standin.add_subscription(customer, [licensed["id"], metered["id"]])
    invoice = stripe_standin.add_invoice(
        customer, subscription=subscription, lines=[(licensed["id"], 4900), (metered["id"], 1850, 3700)]
    )
    return SimpleNamespace(
        org=org,
        customer=customer,
        licensed=licensed,
        metered=metered,
        product=licensed["product"],
        subscription=subscription,
        invoice=invoice,
    )


def refetch_calls(billing, *, invoice=True):
    """What dj-stripe asks the first time it meets this customer, subscription and product."""
    calls = [f"GET /v1/customers/{billing.customer['id']}"]
    if invoice:
        calls.append(f"GET /v1/invoices/{billing.invoice['id']}")
    return [
        *calls,
        f"GET /v1/subscriptions/{billing.subscription['id']}",
        f"GET /v1/products/{billing.product}",
        f"GET /v1/products/{billing.product}/features",
    ]


# --- invoice events ---------------------------------------------------------------------------------


def test_invoice_payment_failed_stores_the_invoice_its_subscription_and_customer(
    stripe_standin, post_webhook, billing
):
    event = stripe_standin.event("invoice.payment_failed", billing.invoice["id"])

    response = post_webhook(event)

    assert response.status_code == 200
    assert Event.objects.get().id == event["id"]
    invoice = Invoice.objects.get()
    assert (invoice.id, invoice.status, invoice.stripe_data["amount_due"]) == (
        billing.invoice["id"],
        "open",
        6750,
    )
    assert invoice.customer.subscriber == billing.org
    subscription = Subscription.objects.get()
    assert (subscription.id, subscription.status, subscription.customer_id) == (
        billing.subscription["id"],
        "active",
        billing.customer["id"],
    )
    assert {i.price.id for i in SubscriptionItem.objects.all()} == {
        billing.licensed["id"],
        billing.metered["id"],
    }
    assert LineItem.objects.filter(stripe_data__invoice=invoice.id).count() == 2
    assert stripe_standin.calls() == refetch_calls(billing)
    (refetch,) = stripe_standin.requests_to("GET", f"/v1/invoices/{billing.invoice['id']}")
    assert refetch.params == {"expand": ["discounts", "lines.data.discounts"]}


def test_invoice_created_stores_a_draft_with_its_period(stripe_standin, post_webhook, billing):
    draft = stripe_standin.close_period(billing.subscription["id"])

    response = post_webhook(stripe_standin.event("invoice.created", draft["id"]))

    assert response.status_code == 200
    stored = Invoice.objects.get(id=draft["id"])
    assert (stored.status, stored.stripe_data["billing_reason"]) == ("draft", "subscription_cycle")
    assert (stored.stripe_data["period_start"], stored.stripe_data["period_end"]) == (
        draft["period_start"],
        draft["period_end"],
    )
    assert stored.stripe_data["parent"]["subscription_details"]["subscription"] == billing.subscription["id"]
    assert f"GET /v1/invoices/{draft['id']}" in stripe_standin.calls()


def test_every_call_sends_the_pinned_version(stripe_standin, post_webhook, billing, settings):
    post_webhook(stripe_standin.event("invoice.payment_failed", billing.invoice["id"]))

    versions = {r.path: r.stripe_version for r in stripe_standin.requests}
    # dj-stripe does not pass stripe_version on the features call; the project's pin of
    # stripe.api_version (billing.apps) makes that one send the pinned version too.
    assert set(versions.values()) == {settings.STRIPE_API_VERSION}
    assert {r.api_key for r in stripe_standin.requests} == {STANDIN_API_KEY}


def test_invoice_paid_reads_every_line_through_the_lines_endpoint(stripe_standin, post_webhook, billing):
    invoice = stripe_standin.add_invoice(
        billing.customer,
        subscription=billing.subscription,
        status="paid",
        lines=[(billing.licensed["id"], 100)] * 11 + [(billing.metered["id"], 1850, 3700)],
    )

    response = post_webhook(stripe_standin.event("invoice.paid", invoice["id"]))

    assert response.status_code == 200
    assert Invoice.objects.get(id=invoice["id"]).status == "paid"
    assert LineItem.objects.filter(stripe_data__invoice=invoice["id"]).count() == 12
    (page,) = stripe_standin.requests_to("GET", f"/v1/invoices/{invoice['id']}/lines")
    assert page.params == {"starting_after": invoice["lines"]["data"][9]["id"]}


@pytest.mark.parametrize(
    ("type", "status"),
    [
        ("invoice.payment_failed", "open"),
        ("invoice.paid", "paid"),
        ("invoice.voided", "void"),
        ("invoice.marked_uncollectible", "uncollectible"),
    ],
)
def test_each_invoice_event_stores_the_status_stripe_has(stripe_standin, post_webhook, billing, type, status):
    stripe_standin.update(billing.invoice["id"], status=status)

    response = post_webhook(stripe_standin.event(type, billing.invoice["id"]))

    assert response.status_code == 200
    assert Event.objects.get().type == type
    assert Invoice.objects.get().status == status
    assert stripe_standin.calls() == refetch_calls(billing)


def test_dj_stripe_stores_what_it_refetches_not_what_the_event_says(stripe_standin, post_webhook, billing):
    stale = stripe_standin.event("invoice.payment_failed", billing.invoice["id"])  # status open
    stripe_standin.update(billing.invoice["id"], status="paid", amount_paid=6750, amount_remaining=0)

    post_webhook(stale)

    assert stale["data"]["object"]["status"] == "open"
    assert Invoice.objects.get().status == "paid"


def test_a_later_event_refetches_only_the_invoice(stripe_standin, post_webhook, billing):
    post_webhook(stripe_standin.event("invoice.payment_failed", billing.invoice["id"]))
    stripe_standin.update(billing.invoice["id"], status="paid")
    stripe_standin.requests.clear()

    post_webhook(stripe_standin.event("invoice.paid", billing.invoice["id"]))

    assert stripe_standin.calls() == [f"GET /v1/invoices/{billing.invoice['id']}"]
    assert Invoice.objects.get().status == "paid"
    assert Event.objects.count() == 2


# --- subscription and checkout events ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("type", "status"),
    [
        ("customer.subscription.created", "active"),
        ("customer.subscription.updated", "past_due"),
        ("customer.subscription.deleted", "canceled"),
    ],
)
def test_each_subscription_event_stores_the_subscription(stripe_standin, post_webhook, billing, type, status):
    stripe_standin.update(billing.subscription["id"], status=status)

    response = post_webhook(stripe_standin.event(type, billing.subscription["id"]))

    assert response.status_code == 200
    subscription = Subscription.objects.get()  # `deleted` keeps the row, with Stripe's status
    assert subscription.status == status
    assert subscription.customer.subscriber == billing.org
    assert SubscriptionItem.objects.count() == 2
    assert Invoice.objects.count() == 0
    assert stripe_standin.calls() == refetch_calls(billing, invoice=False)


def test_checkout_session_completed_links_the_session_to_its_subscription(
    stripe_standin, post_webhook, billing
):
    session = stripe.checkout.Session.create(
        mode="subscription",
        customer=billing.customer["id"],
        line_items=[{"price": billing.licensed["id"], "quantity": 1}, {"price": billing.metered["id"]}],
        success_url="https://billing.example/success",
        metadata={"djstripe_subscriber": str(billing.org.pk)},
    )
    completed = stripe_standin.complete_checkout(session.id)
    stripe_standin.requests.clear()

    response = post_webhook(stripe_standin.event("checkout.session.completed", session.id))

    assert response.status_code == 200
    stored = Session.objects.get()
    assert (stored.customer_id, stored.subscription_id) == (billing.customer["id"], completed["subscription"])
    assert Subscription.objects.get().id == completed["subscription"]
    product = billing.product
    assert stripe_standin.calls() == [
        f"GET /v1/customers/{billing.customer['id']}",
        f"GET /v1/checkout/sessions/{session.id}",
        f"GET /v1/subscriptions/{completed['subscription']}",
        f"GET /v1/products/{product}",
        f"GET /v1/products/{product}/features",
        # The session's metadata carries dj-stripe's subscriber key: dj-stripe writes it onto the customer.
        f"POST /v1/customers/{billing.customer['id']}",
    ]
    assert stripe_standin.requests[1].params == {
        "expand": ["line_items", "total_details.breakdown", "line_items.data.discounts"]
    }
    assert stripe_standin.requests[-1].params == {"metadata": {"djstripe_subscriber": str(billing.org.pk)}}


# --- signatures, duplicates, failures ------------------------------------------------------------------


@pytest.mark.parametrize(
    "tamper",
    [
        {"secret": "whsec_someone_else"},
        {"age": 301},  # older than the endpoint's tolerance (300 s)
        {"signature": "t=1,v1=deadbeef"},
    ],
    ids=["wrong-secret", "stale", "garbage"],
)
def test_a_bad_signature_is_rejected_with_400(stripe_standin, post_webhook, billing, tamper):
    if "age" in tamper:  # relative to the test's clock, not to when the parameters were collected
        tamper = {"timestamp": int(time.time()) - tamper["age"]}
    response = post_webhook(stripe_standin.event("invoice.paid", billing.invoice["id"]), **tamper)

    assert response.status_code == 400
    assert Event.objects.count() == 0
    assert not ReceivedStripeEvent.objects.exists()  # nothing stored, nothing to process
    assert stripe_standin.requests == []


def test_the_same_event_twice_is_stored_once(stripe_standin, post_webhook, billing):
    event = stripe_standin.event("invoice.payment_failed", billing.invoice["id"])
    post_webhook(event)
    stripe_standin.requests.clear()

    again = post_webhook(event)

    assert again.status_code == 200
    assert Event.objects.count() == ReceivedStripeEvent.objects.count() == 1
    assert stripe_standin.requests == []  # the project's view sees the event id and stops there


def test_a_failed_refetch_rolls_the_event_back_and_a_redelivery_succeeds(
    stripe_standin, post_webhook, billing, monkeypatch
):
    monkeypatch.setattr(stripe, "max_network_retries", 0)
    stripe_standin.fail_next("GET", f"/v1/invoices/{billing.invoice['id']}", status=500)
    event = stripe_standin.event("invoice.payment_failed", billing.invoice["id"])

    assert post_webhook(event).status_code == 200  # acknowledged once stored; processed after
    first = ReceivedStripeEvent.objects.get()
    assert (first.status, first.attempts) == (StripeEventStatus.PENDING, 1)
    assert "An unknown error occurred" in first.last_error
    assert Event.objects.count() == Invoice.objects.count() == 0  # dj-stripe's sync was rolled back

    assert process_stripe_event(event_id=event["id"], now=first.next_attempt_at) == "processed"
    assert Event.objects.count() == Invoice.objects.count() == 1


def test_an_object_the_stand_in_does_not_hold_fails_the_delivery(stripe_standin, post_webhook, billing):
    ghost = stripe_standin.event("invoice.payment_failed", billing.invoice["id"])
    ghost["data"]["object"]["customer"] = "cus_NotInStandin00"

    assert post_webhook(ghost).status_code == 200

    stored = ReceivedStripeEvent.objects.get()
    assert stored.status == StripeEventStatus.FAILED  # Stripe's 404 will not change: kept for staff
    assert "No such customer" in stored.last_error
    assert Event.objects.count() == 0


# --- what must be seeded ----------------------------------------------------------------------------


def test_without_account_rows_dj_stripe_asks_for_the_account_twice(
    stripe_standin, billing, client, settings, djstripe_webhook_endpoint, django_capture_on_commit_callbacks
):
    # Same as the `post_webhook` fixture's endpoint, but with the seeded rows removed first.
    djstripe_webhook_endpoint.djstripe_owner_account = None
    djstripe_webhook_endpoint.save()
    APIKey.objects.all().delete()
    Account.objects.all().delete()
    body = json.dumps(stripe_standin.event("invoice.payment_failed", billing.invoice["id"]))

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/stripe/webhook/{djstripe_webhook_endpoint.djstripe_uuid}/",
            data=body,
            content_type="application/json",
            headers=sign_webhook(body, WEBHOOK_SECRET),
        )

    assert response.status_code == 200
    assert stripe_standin.calls()[:2] == ["GET /v1/account", "GET /v1/account"]
    assert stripe_standin.calls()[2:] == refetch_calls(billing)
    assert Account.objects.get().id == stripe_standin.account["id"]
    assert APIKey.objects.get().secret == STANDIN_API_KEY


def test_dj_stripe_refuses_the_projects_default_test_key(stripe_standin, post_webhook, billing, settings):
    # pyproject.toml's STRIPE_TEST_SECRET_KEY default, `sk_test_standin`, is too short for dj-stripe.
    APIKey.objects.all().delete()
    settings.STRIPE_TEST_SECRET_KEY = "sk_test_standin"
    WebhookEndpoint.objects.update(djstripe_owner_account=None)

    assert post_webhook(stripe_standin.event("invoice.paid", billing.invoice["id"])).status_code == 200

    stored = ReceivedStripeEvent.objects.get()
    assert stored.status == StripeEventStatus.FAILED
    assert stored.last_error.startswith(InvalidStripeAPIKey.__module__ + "." + InvalidStripeAPIKey.__name__)
    assert stripe_standin.requests == []


# --- dahlia, as dj-stripe stores it ------------------------------------------------------------------


def test_dahlia_fields_dj_stripe_does_not_map(stripe_standin, post_webhook, billing):
    post_webhook(stripe_standin.event("invoice.payment_failed", billing.invoice["id"]))

    invoice = Invoice.objects.get()
    # Invoice.subscription is gone from the payload, so dj-stripe's foreign key stays empty:
    assert invoice.subscription is None
    assert invoice.stripe_data["parent"]["subscription_details"]["subscription"] == billing.subscription["id"]
    # Invoice.paid is gone: dj-stripe's property raises; `status` is the answer.
    with pytest.raises(KeyError):
        _ = invoice.paid
    # Line items: the subscription is linked, the item and the price are not (dahlia moved them).
    line = LineItem.objects.get(id=billing.invoice["lines"]["data"][1]["id"])
    assert line.subscription_id == billing.subscription["id"]
    assert line.subscription_item is None
    assert line.price is None
    assert line.stripe_data["pricing"]["price_details"]["price"] == billing.metered["id"]
    assert (
        line.stripe_data["parent"]["subscription_item_details"]["subscription_item"]
        == (billing.subscription["items"]["data"][1]["id"])
    )
    # The billing period moved from the subscription to its items.
    subscription = Subscription.objects.get()
    assert subscription.current_period_end is None
    assert SubscriptionItem.objects.get(price__id=billing.metered["id"]).stripe_data["current_period_end"] > 0
    assert Price.objects.get(id=billing.metered["id"]).stripe_data["recurring"]["meter"]
    assert Product.objects.get().id == billing.product


# --- the JSON fixtures, end to end ------------------------------------------------------------------


def test_every_event_fixture_goes_through_dj_stripe(stripe_standin, post_webhook):
    org = OrganizationFactory()
    stored = {}
    for path in sorted(FIXTURES.glob("*.json")):
        obj = json.loads(path.read_text())
        if obj["object"] in ("customer", "product", "price", "billing.meter", "subscription", "invoice"):
            if obj["object"] == "customer":
                obj["metadata"]["djstripe_subscriber"] = str(org.pk)
            stored[obj["object"]] = stripe_standin.set(obj)
    session = json.loads((FIXTURES / "event_checkout_session_completed.json").read_text())["data"]["object"]
    stripe_standin.set(session)

    for path in sorted(FIXTURES.glob("event_*.json")):
        event = json.loads(path.read_text())
        assert post_webhook(event).status_code == 200, path.name

    assert Event.objects.count() == len(list(FIXTURES.glob("event_*.json")))
    assert Invoice.objects.get().id == stored["invoice"]["id"]
    assert Customer.objects.get().subscriber == org
    assert Session.objects.get().subscription_id == stored["subscription"]["id"]
