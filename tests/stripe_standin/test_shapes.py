"""The JSON fixtures and the builders' objects have Stripe's shape in the pinned version.

"Stripe's shape" is checked against stripe-python 15.6's generated resource types (built from Stripe's
OpenAPI spec for 2026-08-26.dahlia, a later version of the same release): every key an object has is
an attribute Stripe documents for it, and every attribute Stripe always sends is there.
"""

import json
import pathlib
import typing

import pytest
import stripe

from tests.stripe_standin import objects

FIXTURES = pathlib.Path(__file__).parent.parent / "fixtures" / "stripe"
RESOURCES = {
    "account": stripe.Account,
    "billing.meter": stripe.billing.Meter,
    "billing.meter_event": stripe.billing.MeterEvent,
    "billing.meter_event_summary": stripe.billing.MeterEventSummary,
    "checkout.session": stripe.checkout.Session,
    "customer": stripe.Customer,
    "event": stripe.Event,
    "invoice": stripe.Invoice,
    "item": stripe.LineItem,
    "line_item": stripe.InvoiceLineItem,
    "plan": stripe.Plan,
    "price": stripe.Price,
    "product": stripe.Product,
    "subscription": stripe.Subscription,
    "subscription_item": stripe.SubscriptionItem,
}


def documented(cls) -> tuple[set[str], set[str]]:
    """(every attribute, the attributes Stripe always sends) of a stripe-python resource class."""
    hints = {
        name: repr(hint)
        for name, hint in cls.__dict__.get("__annotations__", {}).items()
        if not name.startswith("_") and typing.get_origin(hint) is not typing.ClassVar
    }
    always = {name for name, hint in hints.items() if "Optional" not in hint and "NoneType" not in hint}
    return set(hints), always


def shape_problems(obj, where="") -> list[str]:
    """Keys Stripe does not document, and keys it always sends but that are missing, at any depth."""
    problems = []
    kind = obj.get("object") if isinstance(obj, dict) else None
    if isinstance(kind, str) and kind in RESOURCES:
        every, always = documented(RESOURCES[kind])
        problems += [f"{where or kind}: unknown key {key!r}" for key in sorted(set(obj) - every)]
        problems += [f"{where or kind}: missing key {key!r}" for key in sorted(always - set(obj))]
    if isinstance(obj, dict):
        for key, value in obj.items():
            problems += shape_problems(value, f"{where}.{key}")
    elif isinstance(obj, list):
        for index, value in enumerate(obj):
            problems += shape_problems(value, f"{where}[{index}]")
    return problems


def load(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


FIXTURE_NAMES = sorted(path.stem for path in FIXTURES.glob("*.json"))


def test_the_fixtures_are_all_there():
    assert set(FIXTURE_NAMES) >= {
        "account",
        "billing_meter",
        "checkout_session",
        "customer",
        "event_checkout_session_completed",
        "event_customer_subscription_created",
        "event_customer_subscription_deleted",
        "event_customer_subscription_updated",
        "event_invoice_marked_uncollectible",
        "event_invoice_paid",
        "event_invoice_payment_failed",
        "event_invoice_voided",
        "invoice",
        "invoice_line_item",
        "meter_event",
        "meter_event_summary",
        "price_licensed",
        "price_metered",
        "product",
        "subscription",
    }


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_each_fixture_has_stripes_shape(name):
    assert shape_problems(load(name)) == []


@pytest.mark.parametrize("name", [n for n in FIXTURE_NAMES if n.startswith("event_")])
def test_each_event_fixture_is_a_pinned_test_mode_envelope(name):
    event = load(name)

    assert event["api_version"] == objects.API_VERSION
    assert event["livemode"] is False
    assert name == "event_" + event["type"].replace(".", "_")
    category = event["type"].rsplit(".", 1)[0]
    assert event["data"]["object"]["object"] == {"customer.subscription": "subscription"}.get(
        category, category
    )


def test_the_fixtures_refer_to_each_other():
    customer, subscription, invoice = load("customer"), load("subscription"), load("invoice")
    licensed, metered, meter = load("price_licensed"), load("price_metered"), load("billing_meter")

    assert {licensed["product"], metered["product"]} == {load("product")["id"]}
    assert metered["recurring"] == {**metered["recurring"], "usage_type": "metered", "meter": meter["id"]}
    assert subscription["customer"] == invoice["customer"] == customer["id"]
    assert [i["price"]["id"] for i in subscription["items"]["data"]] == [licensed["id"], metered["id"]]
    assert invoice["parent"]["subscription_details"]["subscription"] == subscription["id"]
    assert load("meter_event")["payload"]["stripe_customer_id"] == customer["id"]
    assert load("meter_event_summary")["meter"] == meter["id"]
    items = {i["id"]: i["price"]["id"] for i in subscription["items"]["data"]}
    for line in invoice["lines"]["data"]:
        assert (
            items[line["parent"]["subscription_item_details"]["subscription_item"]]
            == (line["pricing"]["price_details"]["price"])
        )
    assert load("invoice_line_item") == invoice["lines"]["data"][1]


@pytest.mark.parametrize("name", ["invoice", "event_invoice_paid"])
def test_the_invoice_fixtures_are_dahlia_invoices(name):
    invoice = load(name)
    invoice = invoice["data"]["object"] if invoice["object"] == "event" else invoice

    assert "subscription" not in invoice
    assert "paid" not in invoice
    assert invoice["amount_due"] == sum(line["amount"] for line in invoice["lines"]["data"])
    line = invoice["lines"]["data"][0]
    assert set(line["pricing"]) == {"price_details", "type", "unit_amount_decimal"}
    assert line["parent"]["type"] == "subscription_item_details"
    for gone in ("price", "plan", "proration", "subscription_item", "type", "unit_amount_excluding_tax"):
        assert gone not in line


def test_the_stripe_library_reads_the_fixtures():
    invoice = stripe.Invoice.construct_from(load("invoice"), "sk_test_x")

    assert invoice.parent.subscription_details.subscription == load("subscription")["id"]
    assert invoice.lines.data[1].pricing.price_details.price == load("price_metered")["id"]


def test_what_the_stand_in_answers_has_stripes_shape(stripe_standin):
    meter = stripe_standin.add_meter(event_name="overage_credits")
    licensed = stripe_standin.add_price(unit_amount=4900)
    metered = stripe_standin.add_price(unit_amount_decimal="0.5", usage_type="metered", meter=meter["id"])
    customer = stripe_standin.add_customer(email="a@example.com")
    session = stripe.checkout.Session.create(
        mode="subscription",
        customer=customer["id"],
        line_items=[{"price": licensed["id"], "quantity": 1}, {"price": metered["id"]}],
        expand=["line_items"],
    )
    completed = stripe_standin.complete_checkout(session.id)
    stripe.billing.MeterEvent.create(
        event_name="overage_credits", payload={"stripe_customer_id": customer["id"], "value": "3"}
    )

    answers = [
        session.to_dict(),
        stripe.Account.retrieve().to_dict(),
        stripe.Subscription.retrieve(completed["subscription"]).to_dict(),
        stripe.Invoice.retrieve(completed["invoice"]).to_dict(),
        stripe.Invoice.retrieve(stripe_standin.close_period(completed["subscription"])["id"]).to_dict(),
        stripe_standin.event("checkout.session.completed", session.id),
        *stripe_standin.meter_events,
    ]
    assert [problem for answer in answers for problem in shape_problems(answer)] == []
