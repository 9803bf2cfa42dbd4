"""Prepaid credit purchases: priced by the catalog's [topups], granted once when Stripe says paid,
clawed back (the unspent part) when Stripe refunds."""

from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.models import (
    CreditGrant,
    CreditPurchase,
    EntryType,
    GrantType,
    LedgerEntry,
    PurchaseStatus,
    TopUpTerms,
)
from billing.services.catalog import CatalogError, load_catalog
from billing.services.debits import debit_usage
from billing.services.purchases import price_of
from orgs.models import AuditEntry
from orgs.services.outbox import process_outbox
from tests.billing.conftest import deliver
from tests.concurrency import committing, run_concurrently
from tests.conftest import MEMBER, OUTSIDER, OWNER, TEST_CATALOG

pytestmark = pytest.mark.django_db

TOPUPS = {"cents_per_credit": "0.5", "min_credits": "1000", "max_credits": "1000000"}
BODY = {
    "credits": "5000",
    "user_id": OWNER,
    "success_url": "https://red.example/credits/done",
    "cancel_url": "https://red.example/credits",
    "idempotency_key": "buy-1",
}


@pytest.fixture
def topups(catalog):
    load_catalog({"plans": TEST_CATALOG["plans"], "topups": TOPUPS})
    return TopUpTerms.objects.get()


@pytest.fixture
def buy(api, org, customer, stripe_standin, topups):
    """`buy()` opens a purchase through the API; returns the session as Stripe holds it."""

    def open_purchase(**changes):
        response = api.post(url(org), {**BODY, **changes}, format="json")
        assert response.status_code == 201, response.content
        return stripe_standin.get(response.json()["id"])

    return open_purchase


def url(org):
    return f"/api/v1/orgs/{org.public_id}/credit-purchases"


def purchase_grants(org):
    return list(CreditGrant.objects.filter(org=org, grant_type=GrantType.PURCHASE))


def available(api, org):
    return Decimal(api.get(f"/api/v1/orgs/{org.public_id}/credits").json()["balance"])


def spend(org, credits):
    with transaction.atomic():
        debit_usage(costs_by_org={org.pk: [(1, Decimal(credits))]}, reference="test")


def test_a_purchase_opens_a_payment_mode_checkout_priced_by_the_catalog(api, org, buy, stripe_standin):
    session = buy()

    (sent,) = stripe_standin.requests_to("POST", "/v1/checkout/sessions")
    assert sent.params["mode"] == "payment"
    assert sent.params["line_items"][0]["price_data"]["unit_amount"] == "2500"  # 5000 × 0.5¢
    assert sent.params["payment_intent_data"]["setup_future_usage"] == "off_session"
    purchase = CreditPurchase.objects.get()
    assert sent.idempotency_key == f"credit-purchase:{purchase.pk}"
    assert (purchase.credits, purchase.amount_cents, purchase.status) == (Decimal(5000), 2500, "open")
    assert session["amount_total"] == 2500 and session["url"].startswith("https://")
    assert not purchase_grants(org)  # nothing before Stripe says paid


def test_the_same_request_twice_is_one_session(api, org, buy, stripe_standin):
    first = buy()
    second = buy()

    assert first["id"] == second["id"]
    assert len(stripe_standin.requests_to("POST", "/v1/checkout/sessions")) == 1
    other = api.post(url(org), {**BODY, "credits": "6000"}, format="json")
    assert (other.status_code, other.json()["error"]["code"]) == (409, "idempotency_conflict")


def test_the_grant_is_written_once_however_often_stripe_says_paid(
    api, org, buy, stripe_standin, post_webhook
):
    session = buy()
    stripe_standin.complete_checkout(session["id"])

    deliver(stripe_standin, post_webhook, "checkout.session.completed", session["id"])
    deliver(stripe_standin, post_webhook, "checkout.session.completed", session["id"])  # a new event id
    deliver(stripe_standin, post_webhook, "checkout.session.async_payment_succeeded", session["id"])

    (grant,) = purchase_grants(org)
    assert grant.amount == Decimal(5000)
    purchase = CreditPurchase.objects.get()
    assert purchase.status == PurchaseStatus.PAID and purchase.grant == grant
    assert purchase.payment_intent_id == stripe_standin.get(session["id"])["payment_intent"]
    assert AuditEntry.objects.filter(org=org, action="credits.purchased").count() == 1
    body = api.get(f"/api/v1/orgs/{org.public_id}/credits").json()
    (listed,) = body["purchases"]
    assert (listed["id"], listed["status"], listed["grant_id"]) == (session["id"], "paid", grant.public_id)
    assert listed["credits"] == "5000.000000"


def test_the_org_page_lists_purchases(admin_client, org, buy, stripe_standin, post_webhook):
    session = buy()
    stripe_standin.complete_checkout(session["id"])
    deliver(stripe_standin, post_webhook, "checkout.session.completed", session["id"])

    page = admin_client.get(f"/admin/orgs/organization/{org.pk}/change/").content.decode()

    assert "Credit purchases" in page and stripe_standin.get(session["id"])["payment_intent"] in page


def test_an_unpaid_completion_grants_nothing_until_the_async_success(org, buy, stripe_standin, post_webhook):
    session = buy()
    stripe_standin.complete_checkout(session["id"])
    stripe_standin.update(session["id"], payment_status="unpaid")  # a delayed payment method

    deliver(stripe_standin, post_webhook, "checkout.session.completed", session["id"])
    assert not purchase_grants(org)

    stripe_standin.update(session["id"], payment_status="paid")
    deliver(stripe_standin, post_webhook, "checkout.session.async_payment_succeeded", session["id"])
    assert len(purchase_grants(org)) == 1


def test_a_refund_claws_back_the_unspent_part_and_records_the_rest_as_owed(
    org, buy, stripe_standin, post_webhook
):
    session = buy()
    stripe_standin.complete_checkout(session["id"])
    deliver(stripe_standin, post_webhook, "checkout.session.completed", session["id"])
    spend(org, "3000")  # the free allowance (1000) first, then 2000 of the purchase
    charge_id = stripe_standin.get(stripe_standin.get(session["id"])["payment_intent"])["latest_charge"]

    stripe_standin.refund_charge(charge_id)
    deliver(stripe_standin, post_webhook, "charge.refunded", charge_id)
    deliver(stripe_standin, post_webhook, "charge.refunded", charge_id)  # a replay changes nothing

    purchase = CreditPurchase.objects.get()
    assert (purchase.status, purchase.refunded_cents) == (PurchaseStatus.REFUNDED, 2500)
    assert (purchase.clawed_back, purchase.owed) == (Decimal(3000), Decimal(2000))
    (adjustment,) = LedgerEntry.objects.filter(org=org, entry_type=EntryType.ADJUSTMENT)
    assert adjustment.amount == Decimal(-3000)
    assert purchase_grants(org)[0].remaining == 0
    assert AuditEntry.objects.filter(org=org, action="credits.purchase_refunded").count() == 1


def test_partial_refunds_take_back_their_share_each(org, buy, stripe_standin, post_webhook):
    session = buy()
    stripe_standin.complete_checkout(session["id"])
    deliver(stripe_standin, post_webhook, "checkout.session.completed", session["id"])
    charge_id = stripe_standin.get(stripe_standin.get(session["id"])["payment_intent"])["latest_charge"]

    stripe_standin.refund_charge(charge_id, 500)  # a fifth
    deliver(stripe_standin, post_webhook, "charge.refunded", charge_id)
    stripe_standin.refund_charge(charge_id, 1000)  # two more fifths
    deliver(stripe_standin, post_webhook, "charge.refunded", charge_id)

    purchase = CreditPurchase.objects.get()
    assert (purchase.clawed_back, purchase.owed) == (Decimal(3000), Decimal(0))
    adjustments = LedgerEntry.objects.filter(org=org, entry_type=EntryType.ADJUSTMENT).order_by("id")
    assert [entry.amount for entry in adjustments] == [Decimal(-1000), Decimal(-2000)]


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"credits": "999"}, "invalid_request"),  # below the minimum
        ({"credits": "1000001"}, "invalid_request"),
        ({"credits": "-5"}, "invalid_request"),
        ({"color": "red"}, "unknown_field"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(api, org, customer, topups, stripe_standin, changes, code):
    response = api.post(url(org), {**BODY, **changes}, format="json")

    assert (response.status_code, response.json()["error"]["code"]) == (400, code)
    assert not CreditPurchase.objects.exists()
    assert not stripe_standin.requests_to("POST", "/v1/checkout/sessions")


def test_a_plain_member_may_not_buy(api, org, customer, topups):
    response = api.post(url(org), {**BODY, "user_id": MEMBER}, format="json")

    assert (response.status_code, response.json()["error"]["code"]) == (403, "insufficient_role")


def test_an_outsider_may_not_buy(api, org, other_org, customer, topups):
    response = api.post(url(org), {**BODY, "user_id": OUTSIDER}, format="json")

    assert (response.status_code, response.json()["error"]["code"]) == (403, "not_a_member")
    assert not CreditPurchase.objects.exists()


def test_without_topups_in_the_catalog_it_is_503(api, org, customer, catalog):
    response = api.post(url(org), BODY, format="json")

    assert (response.status_code, response.json()["error"]["code"]) == (503, "topups_unavailable")


def test_the_catalog_checks_the_topups_section(catalog):
    with pytest.raises(CatalogError) as error:
        load_catalog({"topups": {**TOPUPS, "min_credits": "2000000", "colour": "x"}})

    assert any("min_credits is above max_credits" in problem for problem in error.value.problems)
    assert not TopUpTerms.objects.exists()


@settings(max_examples=60, deadline=None)
@given(
    credits=st.decimals(min_value=1, max_value=10**9, places=6),
    cents_per_credit=st.decimals(min_value=Decimal("0.000001"), max_value=1000, places=6),
)
def test_a_purchase_never_costs_less_than_the_catalog_price_nor_a_cent_more(credits, cents_per_credit):
    terms = TopUpTerms(cents_per_credit=cents_per_credit, min_credits=1, max_credits=10**9)

    cents = price_of(credits, terms)

    assert credits * cents_per_credit <= cents < credits * cents_per_credit + 1


def paid_purchase(org, buy, stripe_standin, post_webhook):
    session = buy()
    stripe_standin.complete_checkout(session["id"])
    deliver(stripe_standin, post_webhook, "checkout.session.completed", session["id"])
    return session


def auto_url(org):
    return f"/api/v1/orgs/{org.public_id}/auto-top-up"


def test_auto_top_up_buys_once_per_crossing_with_the_saved_card(api, org, buy, stripe_standin, post_webhook):
    paid_purchase(org, buy, stripe_standin, post_webhook)  # 5000 credits, card saved
    response = api.put(
        auto_url(org), {"threshold_credits": "500", "credits": "2000", "user_id": OWNER}, format="json"
    )
    assert response.json() == {"threshold_credits": "500.000000", "credits": "2000.000000"}
    balance = available(api, org)

    spend(org, balance - 600)  # still above the threshold
    spend(org, 200)  # crosses below 500
    spend(org, 50)  # below already: no second purchase
    process_outbox()

    (charged,) = stripe_standin.requests_to("POST", "/v1/payment_intents")
    automatic = CreditPurchase.objects.get(automatic=True)
    assert charged.params["off_session"] == "true" and charged.params["amount"] == "1000"  # 2000 × 0.5¢
    assert charged.idempotency_key == f"credit-purchase:{automatic.pk}"
    assert automatic.status == PurchaseStatus.PAID
    assert sorted(grant.amount for grant in purchase_grants(org)) == [Decimal(2000), Decimal(5000)]

    spend(org, available(api, org) - 100)  # re-armed by the grant: a new crossing buys again
    process_outbox()
    assert CreditPurchase.objects.filter(automatic=True).count() == 2


@committing
def test_concurrent_debits_crossing_the_threshold_buy_once(api, org, buy, stripe_standin, post_webhook):
    paid_purchase(org, buy, stripe_standin, post_webhook)  # 5000 credits, card saved
    api.put(auto_url(org), {"threshold_credits": "500", "credits": "2000", "user_id": OWNER}, format="json")
    spend(org, available(api, org) - 700)

    run_concurrently(lambda index: spend(org, 50), 8)  # 700 → 300, each debit its own transaction
    process_outbox()

    assert CreditPurchase.objects.filter(automatic=True).count() == 1
    assert len(stripe_standin.requests_to("POST", "/v1/payment_intents")) == 1
    assert available(api, org) == Decimal(2300)  # the one top-up's 2000 credits granted


def test_auto_top_up_without_a_saved_card_fails_and_stays_off(api, org, customer, topups, stripe_standin):
    api.put(auto_url(org), {"threshold_credits": "500", "credits": "2000", "user_id": OWNER}, format="json")

    spend(org, available(api, org) - 100)
    process_outbox()

    automatic = CreditPurchase.objects.get(automatic=True)
    assert automatic.status == PurchaseStatus.FAILED and "saved card" in automatic.error
    assert not stripe_standin.requests_to("POST", "/v1/payment_intents")


def test_auto_top_up_is_turned_off_with_nulls_and_needs_both_values(api, org, customer, topups):
    half = api.put(
        auto_url(org), {"threshold_credits": "500", "credits": None, "user_id": OWNER}, format="json"
    )
    assert (half.status_code, half.json()["error"]["code"]) == (400, "invalid_request")

    api.put(auto_url(org), {"threshold_credits": "500", "credits": "2000", "user_id": OWNER}, format="json")
    off = api.put(
        auto_url(org), {"threshold_credits": None, "credits": None, "user_id": OWNER}, format="json"
    )

    assert off.json() == {"threshold_credits": None, "credits": None}
    spend(org, available(api, org) - 100)
    assert not CreditPurchase.objects.filter(automatic=True).exists()


def test_a_plain_member_may_not_set_auto_top_up(api, org, customer, topups):
    response = api.put(
        auto_url(org), {"threshold_credits": "1", "credits": "2000", "user_id": MEMBER}, format="json"
    )

    assert (response.status_code, response.json()["error"]["code"]) == (403, "insufficient_role")


def test_an_outsider_may_not_set_auto_top_up(api, org, other_org, customer, topups):
    response = api.put(
        auto_url(org), {"threshold_credits": "1", "credits": "2000", "user_id": OUTSIDER}, format="json"
    )

    assert (response.status_code, response.json()["error"]["code"]) == (403, "not_a_member")
