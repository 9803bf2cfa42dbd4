"""The stand-in's resources: account, customers, catalog, checkout, subscriptions, invoices, events."""

from decimal import Decimal

import pytest
import stripe

from tests.stripe_standin import objects

# --- account and customers ------------------------------------------------------------------------


def test_it_answers_the_account(stripe_standin):
    account = stripe.Account.retrieve()

    assert account.id == stripe_standin.account["id"]
    assert account.settings.dashboard.display_name == "Billing control plane"
    assert account.to_dict()["settings"]["branding"]["icon"] is None  # dj-stripe would fetch a File


def test_it_creates_retrieves_and_lists_customers(stripe_standin):
    created = stripe.Customer.create(email="billing@acme.example", name="Acme", metadata={"org_id": "org_1"})

    fetched = stripe.Customer.retrieve(created.id)

    assert created.id.startswith("cus_")
    assert fetched.to_dict() == created.to_dict()
    assert fetched.invoice_settings.default_payment_method is None
    assert [c.id for c in stripe.Customer.list(email="billing@acme.example").data] == [created.id]
    assert stripe.Customer.list(email="other@acme.example").data == []


def test_it_merges_and_unsets_customer_metadata(stripe_standin):
    customer = stripe_standin.add_customer(metadata={"org_id": "org_1", "plan": "pro"})

    updated = stripe.Customer.modify(customer["id"], metadata={"plan": "", "djstripe_subscriber": "7"})

    assert updated.metadata.to_dict() == {"org_id": "org_1", "djstripe_subscriber": "7"}


def test_it_expands_fields_stripe_only_sends_when_asked(stripe_standin):
    customer = stripe_standin.add_customer()
    price = stripe_standin.add_price(unit_amount=100)
    subscription = stripe_standin.add_subscription(customer, [price["id"]])

    plain = stripe.Customer.retrieve(customer["id"])
    expanded = stripe.Customer.retrieve(customer["id"], expand=["sources", "subscriptions"])

    assert "subscriptions" not in plain.to_dict()
    assert expanded.sources.data == []
    assert [s.id for s in expanded.subscriptions.data] == [subscription["id"]]


# --- products and prices --------------------------------------------------------------------------


def test_it_creates_a_product_with_a_chosen_id_once(stripe_standin):
    product = stripe.Product.create(id="plan_pro", name="Pro", metadata={"plan": "pro"})

    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe.Product.create(id="plan_pro", name="Pro again")

    assert product.id == "plan_pro"
    assert caught.value.code == "resource_already_exists"


def test_it_creates_licensed_and_metered_prices(stripe_standin):
    stripe.Product.create(id="plan_pro", name="Pro")
    meter = stripe.billing.Meter.create(
        display_name="Overage credits", event_name="overage_credits", default_aggregation={"formula": "sum"}
    )

    licensed = stripe.Price.create(
        product="plan_pro",
        currency="usd",
        unit_amount=4900,
        recurring={"interval": "month"},
        lookup_key="pro",
    )
    metered = stripe.Price.create(
        product="plan_pro",
        currency="usd",
        unit_amount_decimal="0.5",
        recurring={"interval": "month", "usage_type": "metered", "meter": meter.id},
        lookup_key="pro_overage",
    )

    # stripe-python 15 reads decimal strings as Decimal
    assert (licensed.unit_amount, licensed.unit_amount_decimal, licensed.type) == (
        4900,
        Decimal(4900),
        "recurring",
    )
    assert licensed.recurring.usage_type == "licensed"
    assert (metered.unit_amount, metered.unit_amount_decimal) == (None, Decimal("0.5"))
    assert (metered.recurring.usage_type, metered.recurring.meter) == ("metered", meter.id)


def test_it_lists_prices_by_lookup_keys_active_and_product(stripe_standin):
    pro = stripe_standin.add_price(unit_amount=4900, lookup_key="pro")
    team = stripe_standin.add_price(unit_amount=9900, lookup_key="team")
    stripe_standin.update(team["id"], active=False)

    by_keys = stripe.Price.list(lookup_keys=["pro", "team"])
    active = stripe.Price.list(lookup_keys=["pro", "team"], active=True)
    by_product = stripe.Price.list(product=pro["product"])

    assert {p.id for p in by_keys.data} == {pro["id"], team["id"]}
    assert [p.id for p in active.data] == [pro["id"]]
    assert [p.id for p in by_product.data] == [pro["id"]]


def test_a_lookup_key_belongs_to_one_price_unless_transferred(stripe_standin):
    old = stripe_standin.add_price(unit_amount=4900, lookup_key="pro")

    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe.Price.create(product=old["product"], currency="usd", unit_amount=5900, lookup_key="pro")
    new = stripe.Price.create(
        product=old["product"], currency="usd", unit_amount=5900, lookup_key="pro", transfer_lookup_key=True
    )

    assert caught.value.param == "lookup_key"
    assert stripe_standin.get(old["id"])["lookup_key"] is None
    assert [p.id for p in stripe.Price.list(lookup_keys=["pro"]).data] == [new.id]


def test_a_metered_price_needs_a_meter(stripe_standin):
    product = stripe_standin.add_product(name="Pro")

    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe.Price.create(
            product=product["id"],
            currency="usd",
            unit_amount=1,
            recurring={"interval": "month", "usage_type": "metered"},
        )

    assert caught.value.param == "recurring[meter]"


def test_a_price_needs_an_existing_product(stripe_standin):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe.Price.create(product="prod_missing", currency="usd", unit_amount=1)

    assert (caught.value.http_status, caught.value.code, caught.value.param) == (
        400,
        "resource_missing",
        "product",
    )


def test_it_creates_and_lists_meters(stripe_standin):
    meter = stripe.billing.Meter.create(
        display_name="Overage credits",
        event_name="overage_credits",
        default_aggregation={"formula": "sum"},
        customer_mapping={"type": "by_id", "event_payload_key": "stripe_customer_id"},
        value_settings={"event_payload_key": "value"},
    )

    assert meter.id.startswith("mtr_test_")
    assert (meter.status, meter.default_aggregation.formula) == ("active", "sum")
    assert [m.id for m in stripe.billing.Meter.list(status="active").data] == [meter.id]
    assert stripe.billing.Meter.retrieve(meter.id).event_name == "overage_credits"


# --- checkout -------------------------------------------------------------------------------------


@pytest.fixture
def catalog(stripe_standin):
    meter = stripe_standin.add_meter(event_name="overage_credits")
    licensed = stripe_standin.add_price(unit_amount=4900, lookup_key="pro", nickname="Pro")
    metered = stripe_standin.add_price(
        product=licensed["product"], unit_amount_decimal="0.5", usage_type="metered", meter=meter["id"]
    )
    return licensed, metered


def create_session(customer, licensed, metered, **fields):
    return stripe.checkout.Session.create(
        mode="subscription",
        customer=customer["id"],
        line_items=[{"price": licensed["id"], "quantity": 1}, {"price": metered["id"]}],
        success_url="https://billing.example/success",
        cancel_url="https://billing.example/cancel",
        **fields,
    )


def test_it_opens_a_subscription_checkout_session(stripe_standin, catalog):
    customer = stripe_standin.add_customer()

    session = create_session(
        customer, *catalog, metadata={"org_id": "org_1"}, client_reference_id="org_1", expand=["line_items"]
    )

    assert session.id.startswith("cs_test_")
    assert (session.status, session.payment_status, session.mode) == ("open", "unpaid", "subscription")
    assert session.url.startswith("https://checkout.stripe.com/c/pay/cs_test_")
    assert session.expires_at == session.created + 24 * 3600
    assert (session.client_reference_id, session.metadata.org_id) == ("org_1", "org_1")
    assert [(i.price.id, i.quantity) for i in session.line_items.data] == [
        (catalog[0]["id"], 1),
        (catalog[1]["id"], None),
    ]
    assert session.amount_total == 4900


def test_a_licensed_line_needs_a_quantity_and_a_metered_one_refuses_it(stripe_standin, catalog):
    licensed, metered = catalog

    with pytest.raises(stripe.InvalidRequestError) as no_quantity:
        stripe.checkout.Session.create(mode="subscription", line_items=[{"price": licensed["id"]}])
    with pytest.raises(stripe.InvalidRequestError) as metered_quantity:
        stripe.checkout.Session.create(
            mode="subscription",
            line_items=[{"price": licensed["id"], "quantity": 1}, {"price": metered["id"], "quantity": 1}],
        )

    assert no_quantity.value.param == "line_items[0][quantity]"
    assert metered_quantity.value.param == "line_items[1][quantity]"


def test_it_expires_an_open_session_once(stripe_standin, catalog):
    session = create_session(stripe_standin.add_customer(), *catalog)

    expired = stripe.checkout.Session.expire(session.id)
    with pytest.raises(stripe.InvalidRequestError):
        stripe.checkout.Session.expire(session.id)

    assert (expired.status, expired.url) == ("expired", None)


def test_it_lists_sessions_by_customer_and_status(stripe_standin, catalog):
    customer, other = stripe_standin.add_customer(), stripe_standin.add_customer()
    first = create_session(customer, *catalog)
    second = create_session(customer, *catalog)
    create_session(other, *catalog)
    stripe.checkout.Session.expire(first.id)

    open_ones = stripe.checkout.Session.list(customer=customer["id"], status="open")

    assert [s.id for s in open_ones.data] == [second.id]


def test_completing_checkout_creates_the_subscription_and_its_first_invoice(stripe_standin, catalog):
    licensed, metered = catalog
    customer = stripe_standin.add_customer(email="billing@acme.example")
    session = create_session(customer, licensed, metered, subscription_data={"metadata": {"org_id": "org_1"}})

    completed = stripe_standin.complete_checkout(session.id)

    subscription = stripe.Subscription.retrieve(completed["subscription"])
    invoice = stripe.Invoice.retrieve(completed["invoice"])
    assert (completed["status"], completed["payment_status"]) == ("complete", "paid")
    assert subscription.status == "active"
    assert subscription.metadata.to_dict() == {"org_id": "org_1"}
    assert [(i.price.id, i.quantity) for i in subscription["items"].data] == [
        (licensed["id"], 1),
        (metered["id"], None),
    ]
    assert (invoice.status, invoice.amount_paid, invoice.billing_reason) == (
        "paid",
        4900,
        "subscription_create",
    )
    assert invoice.parent.subscription_details.subscription == subscription.id


# --- subscriptions --------------------------------------------------------------------------------


def test_it_lists_subscriptions_leaving_canceled_ones_out_unless_asked(stripe_standin):
    customer = stripe_standin.add_customer()
    price = stripe_standin.add_price(unit_amount=100)
    active = stripe_standin.add_subscription(customer, [price["id"]])
    canceled = stripe_standin.add_subscription(customer, [price["id"]], status="canceled")

    default = stripe.Subscription.list(customer=customer["id"])
    every = stripe.Subscription.list(customer=customer["id"], status="all")
    only_canceled = stripe.Subscription.list(customer=customer["id"], status="canceled")

    assert [s.id for s in default.data] == [active["id"]]
    assert [s.id for s in every.data] == [canceled["id"], active["id"]]
    assert [s.id for s in only_canceled.data] == [canceled["id"]]


def test_cancel_at_period_end_schedules_and_unschedules_the_end(stripe_standin, time_machine):
    time_machine.move_to("2026-07-10T00:00:00Z", tick=False)
    customer = stripe_standin.add_customer()
    sub = stripe_standin.add_subscription(customer, [stripe_standin.add_price(unit_amount=100)["id"]])
    period_end = sub["items"]["data"][0]["current_period_end"]

    scheduled = stripe.Subscription.modify(sub["id"], cancel_at_period_end=True)
    kept = stripe.Subscription.modify(sub["id"], cancel_at_period_end=False)

    assert (scheduled.status, scheduled.cancel_at, scheduled.canceled_at) == (
        "active",
        period_end,
        1783641600,
    )
    assert scheduled.cancellation_details.reason == "cancellation_requested"
    assert (kept.cancel_at_period_end, kept.cancel_at, kept.canceled_at) == (False, None, None)


def test_canceling_ends_the_subscription_and_it_stays_ended(stripe_standin):
    customer = stripe_standin.add_customer()
    sub = stripe_standin.add_subscription(customer, [stripe_standin.add_price(unit_amount=100)["id"]])

    canceled = stripe.Subscription.cancel(sub["id"])
    with pytest.raises(stripe.InvalidRequestError):
        stripe.Subscription.modify(sub["id"], cancel_at_period_end=True)

    assert canceled.status == "canceled"
    assert canceled.ended_at == canceled.canceled_at is not None
    assert stripe.Subscription.modify(sub["id"], metadata={"note": "allowed"}).metadata.note == "allowed"


def test_a_subscription_carries_its_period_on_its_items(stripe_standin):
    customer = stripe_standin.add_customer()
    sub = stripe.Subscription.retrieve(
        stripe_standin.add_subscription(customer, [stripe_standin.add_price(unit_amount=100)["id"]])["id"]
    ).to_dict()

    assert "current_period_end" not in sub  # basil moved it to the items
    item = sub["items"]["data"][0]
    assert item["current_period_end"] > item["current_period_start"]
    assert item["plan"]["id"] == item["price"]["id"]


# --- invoices -------------------------------------------------------------------------------------


@pytest.fixture
def subscribed(stripe_standin, catalog):
    licensed, metered = catalog
    customer = stripe_standin.add_customer()
    subscription = stripe_standin.add_subscription(customer, [licensed["id"], metered["id"]])
    return customer, subscription, licensed, metered


def test_an_invoice_has_the_dahlia_shape(stripe_standin, subscribed):
    customer, subscription, licensed, metered = subscribed
    invoice = stripe_standin.add_invoice(
        customer, subscription=subscription, lines=[(licensed["id"], 4900), (metered["id"], 150, 300)]
    )

    fetched = stripe.Invoice.retrieve(invoice["id"]).to_dict()

    assert "subscription" not in fetched
    assert "paid" not in fetched
    assert fetched["parent"]["subscription_details"]["subscription"] == subscription["id"]
    assert (fetched["status"], fetched["amount_due"], fetched["amount_paid"]) == ("open", 5050, 0)
    line = fetched["lines"]["data"][1]
    assert line["pricing"]["price_details"] == {"price": metered["id"], "product": metered["product"]}
    assert (
        line["parent"]["subscription_item_details"]["subscription_item"]
        == (subscription["items"]["data"][1]["id"])
    )
    assert (line["amount"], line["quantity"]) == (150, 300)


def test_closing_a_period_opens_its_invoice_as_a_draft_and_renews(stripe_standin, subscribed, time_machine):
    _, subscription, licensed, _ = subscribed
    start, end = (subscription["items"]["data"][0][k] for k in ("current_period_start", "current_period_end"))
    time_machine.move_to(end + 420, tick=False)  # Stripe opens it a few minutes after the period ends

    draft = stripe.Invoice.retrieve(stripe_standin.close_period(subscription["id"])["id"]).to_dict()

    assert (draft["status"], draft["billing_reason"], draft["number"]) == (
        "draft",
        "subscription_cycle",
        None,
    )
    assert (draft["period_start"], draft["period_end"]) == (start, end)
    assert draft["automatically_finalizes_at"] == draft["created"] + 3600 == end + 420 + 3600
    assert draft["parent"]["subscription_details"]["subscription"] == subscription["id"]
    assert [line["amount"] for line in draft["lines"]["data"]] == [licensed["unit_amount"], 0]
    renewed = stripe.Subscription.retrieve(subscription["id"])
    assert {(i["current_period_start"], i["current_period_end"]) for i in renewed["items"]["data"]} == {
        (end, 2 * end - start)
    }
    assert renewed["latest_invoice"] == draft["id"]


def test_closing_the_last_period_ends_a_subscription_set_to_cancel(stripe_standin, subscribed):
    subscription = subscribed[1]
    stripe.Subscription.modify(subscription["id"], cancel_at_period_end=True)
    end = subscription["items"]["data"][0]["current_period_end"]

    draft = stripe_standin.close_period(subscription["id"])

    ended = stripe.Subscription.retrieve(subscription["id"])
    assert (draft["status"], ended["status"], ended["ended_at"]) == ("draft", "canceled", end)


def test_an_invoice_embeds_ten_lines_and_pages_the_rest(stripe_standin, subscribed):
    customer, subscription, licensed, metered = subscribed
    lines = [(licensed["id"], 100)] * 24 + [(metered["id"], 7, 14)]
    invoice = stripe_standin.add_invoice(customer, subscription=subscription, lines=lines)

    fetched = stripe.Invoice.retrieve(invoice["id"])
    every = list(fetched.lines.auto_paging_iter())

    assert (len(fetched.lines.data), fetched.lines.has_more, fetched.lines.total_count) == (10, True, 25)
    assert fetched.lines.url == f"/v1/invoices/{invoice['id']}/lines"
    assert len(every) == 25
    assert every[-1].pricing.price_details.price == metered["id"]
    assert len(stripe_standin.requests_to("GET", f"/v1/invoices/{invoice['id']}/lines")) == 2


def test_it_lists_invoices_by_customer_subscription_and_status(stripe_standin, subscribed):
    customer, subscription, licensed, _ = subscribed
    open_one = stripe_standin.add_invoice(customer, subscription=subscription, lines=[(licensed["id"], 1)])
    paid = stripe_standin.add_invoice(
        customer, subscription=subscription, status="paid", lines=[(licensed["id"], 1)]
    )
    stripe_standin.add_invoice(stripe_standin.add_customer(), lines=[(licensed["id"], 1)])

    by_subscription = stripe.Invoice.list(subscription=subscription["id"])
    open_ones = stripe.Invoice.list(customer=customer["id"], status="open")

    assert [i.id for i in by_subscription.data] == [paid["id"], open_one["id"]]
    assert [i.id for i in open_ones.data] == [open_one["id"]]


def test_an_open_invoice_can_be_paid_voided_or_marked_uncollectible(stripe_standin, subscribed):
    customer, subscription, licensed, _ = subscribed

    def make():
        return stripe_standin.add_invoice(customer, subscription=subscription, lines=[(licensed["id"], 4900)])

    paid = stripe.Invoice.pay(make()["id"])
    voided = stripe.Invoice.void_invoice(make()["id"])
    uncollectible = stripe.Invoice.mark_uncollectible(make()["id"])

    assert (paid.status, paid.amount_paid, paid.amount_remaining) == ("paid", 4900, 0)
    assert paid.status_transitions.paid_at is not None
    assert (voided.status, voided.status_transitions.voided_at is not None) == ("void", True)
    assert uncollectible.status == "uncollectible"
    with pytest.raises(stripe.InvalidRequestError):
        stripe.Invoice.void_invoice(paid.id)


def test_expand_replaces_an_id_with_the_object(stripe_standin, subscribed):
    customer, subscription, licensed, _ = subscribed
    invoice = stripe_standin.add_invoice(customer, subscription=subscription, lines=[(licensed["id"], 1)])

    fetched = stripe.Invoice.retrieve(
        invoice["id"], expand=["customer", "parent.subscription_details.subscription"]
    )

    assert fetched.customer.id == customer["id"]
    assert fetched.parent.subscription_details.subscription.status == "active"


# --- events ---------------------------------------------------------------------------------------


def test_event_builds_a_stored_real_shaped_envelope(stripe_standin, subscribed):
    customer, subscription, licensed, _ = subscribed
    invoice = stripe_standin.add_invoice(
        customer, subscription=subscription, lines=[(licensed["id"], 1)] * 12
    )

    event = stripe_standin.event("invoice.payment_failed", invoice["id"])

    assert event["id"].startswith("evt_")
    assert (event["object"], event["type"], event["livemode"]) == ("event", "invoice.payment_failed", False)
    assert event["api_version"] == objects.API_VERSION
    assert event["request"] == {"id": None, "idempotency_key": None}
    assert event["data"]["object"]["id"] == invoice["id"]
    assert len(event["data"]["object"]["lines"]["data"]) == 10  # as the API renders it
    assert stripe.Event.retrieve(event["id"]).type == "invoice.payment_failed"


def test_event_carries_previous_attributes(stripe_standin, subscribed):
    _, subscription, _, _ = subscribed
    updated = stripe_standin.update(subscription["id"], cancel_at_period_end=True)

    event = stripe_standin.event(
        "customer.subscription.updated", updated, previous_attributes={"cancel_at_period_end": False}
    )

    assert event["data"]["previous_attributes"] == {"cancel_at_period_end": False}
    assert event["data"]["object"]["cancel_at_period_end"] is True


# --- seeding helpers ------------------------------------------------------------------------------


def test_set_stores_a_session_with_its_line_items(stripe_standin, catalog):
    licensed, _ = catalog
    items = [objects.checkout_line_item(price=licensed, quantity=2)]
    session = objects.checkout_session(line_items=items)

    stripe_standin.set(
        {**session, "line_items": objects.list_object(items, "/v1/checkout/sessions/x/line_items")}
    )

    listed = stripe.checkout.Session.list_line_items(session["id"])
    assert [(i.price.id, i.quantity) for i in listed.data] == [(licensed["id"], 2)]
    assert "line_items" not in stripe.checkout.Session.retrieve(session["id"]).to_dict()


def test_a_caller_chosen_product_id_is_found_and_expanded(stripe_standin):
    stripe_standin.add_product(id="plan_pro", name="Pro")
    price = stripe_standin.add_price(product="plan_pro", unit_amount=4900)

    fetched = stripe.Price.retrieve(price["id"], expand=["product"])

    assert stripe_standin.get("plan_pro")["name"] == "Pro"
    assert fetched.product.name == "Pro"


def test_update_changes_stored_state_the_api_then_answers(stripe_standin):
    customer = stripe_standin.add_customer()
    price = stripe_standin.add_price(unit_amount=100)
    subscription = stripe_standin.add_subscription(customer, [price["id"]])

    stripe_standin.update(subscription["id"], status="past_due")

    assert stripe.Subscription.retrieve(subscription["id"]).status == "past_due"
    assert stripe_standin.get(subscription["id"])["status"] == "past_due"
