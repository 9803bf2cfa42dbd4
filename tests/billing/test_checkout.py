import re

import pytest
from rest_framework.test import APIClient

from billing.models import CheckoutSession, CheckoutStatus
from orgs.models import AuditEntry, Role
from orgs.services.audit import Actor
from orgs.services.memberships import upsert_membership
from tests.billing.conftest import subscribe
from tests.conftest import MEMBER, OUTSIDER, OWNER

pytestmark = pytest.mark.django_db

BODY = {
    "plan": "pro",
    "success_url": "https://red.example/billing/done",
    "cancel_url": "https://red.example/billing",
    "user_id": OWNER,
}


def url(org):
    return f"/api/v1/orgs/{org.public_id}/checkout-sessions"


def test_it_opens_a_subscription_checkout_for_the_paths_org(api, org, stripe_standin, stripe_catalog):
    response = api.post(url(org), BODY, format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["id"].startswith("cs_") and body["url"].startswith("https://")
    (sent,) = stripe_standin.requests_to("POST", "/v1/checkout/sessions")
    pro = stripe_catalog["pro"]
    assert sent.params["mode"] == "subscription"
    assert [item["price"] for item in sent.params["line_items"]] == [
        pro.stripe_price_id,
        pro.stripe_overage_price_id,
    ]
    customer = stripe_standin.get(sent.params["customer"])
    assert customer["metadata"]["org_id"] == org.public_id
    session = CheckoutSession.objects.get()
    assert (session.org, session.status, session.stripe_id) == (org, CheckoutStatus.OPEN, body["id"])
    assert sent.idempotency_key == f"checkout:{session.pk}"
    assert AuditEntry.objects.filter(org=org, action="billing.checkout_started").count() == 1


def test_the_customer_is_created_once(api, org, stripe_standin, stripe_catalog):
    api.post(url(org), BODY, format="json")
    api.post(url(org), BODY, format="json")

    creations = stripe_standin.requests_to("POST", "/v1/customers")
    assert len(creations) == 1 and creations[0].idempotency_key == f"customer:{org.public_id}"


def test_a_new_session_expires_the_previous_open_one(api, org, stripe_standin, stripe_catalog):
    first = api.post(url(org), BODY, format="json").json()

    second = api.post(url(org), {**BODY, "plan": "team"}, format="json").json()

    assert stripe_standin.get(first["id"])["status"] == "expired"
    assert stripe_standin.get(second["id"])["status"] == "open"
    statuses = dict(CheckoutSession.objects.values_list("stripe_id", "status"))
    assert statuses == {first["id"]: CheckoutStatus.EXPIRED, second["id"]: CheckoutStatus.OPEN}


def test_a_session_paid_before_our_expire_arrives_blocks_a_second_one(
    api, org, stripe_standin, stripe_catalog
):
    first = api.post(url(org), BODY, format="json").json()
    # The customer pays the first session after our subscription list answered (so it showed none)
    # and before our expire reaches Stripe; our webhook has not arrived.
    stripe_standin.before_next(
        "POST",
        f"/v1/checkout/sessions/{first['id']}/expire",
        lambda request: stripe_standin.complete_checkout(first["id"]),
    )

    response = api.post(url(org), {**BODY, "plan": "team"}, format="json")

    assert (response.status_code, response.json()["error"]["code"]) == (409, "subscription_exists")
    subscription_id = stripe_standin.get(first["id"])["subscription"]
    assert response.json()["error"]["details"]["subscriptions"] == [subscription_id]
    creations = stripe_standin.requests_to("POST", re.compile(r"^/v1/checkout/sessions$"))
    assert len(creations) == 1  # the first one only: no second session reached Stripe
    session = CheckoutSession.objects.get()
    assert (session.stripe_id, session.status, session.subscription_id) == (
        first["id"],
        CheckoutStatus.COMPLETE,
        subscription_id,
    )
    assert AuditEntry.objects.filter(org=org, action="billing.checkout_started").count() == 1


def test_after_a_session_completed_every_later_checkout_gets_409(api, org, stripe_standin, stripe_catalog):
    first = api.post(url(org), BODY, format="json").json()
    stripe_standin.before_next(
        "POST",
        f"/v1/checkout/sessions/{first['id']}/expire",
        lambda request: stripe_standin.complete_checkout(first["id"]),
    )
    api.post(url(org), BODY, format="json")

    again = api.post(url(org), BODY, format="json")  # now Stripe's subscription list shows it

    assert (again.status_code, again.json()["error"]["code"]) == (409, "subscription_exists")
    assert len(stripe_standin.requests_to("POST", re.compile(r"^/v1/checkout/sessions$"))) == 1
    assert CheckoutSession.objects.count() == 1


def test_a_refused_expire_of_a_session_still_open_opens_no_second_one(
    api, org, stripe_standin, stripe_catalog, monkeypatch
):
    monkeypatch.setattr("stripe.max_network_retries", 0)
    first = api.post(url(org), BODY, format="json").json()
    stripe_standin.fail_next("POST", f"/v1/checkout/sessions/{first['id']}/expire", status=400)

    response = api.post(url(org), BODY, format="json")

    assert (response.status_code, response.json()["error"]["code"]) == (502, "stripe_refused")
    assert stripe_standin.get(first["id"])["status"] == "open"
    assert len(stripe_standin.requests_to("POST", re.compile(r"^/v1/checkout/sessions$"))) == 1
    assert list(CheckoutSession.objects.values_list("stripe_id", "status")) == [
        (first["id"], CheckoutStatus.OPEN)
    ]


def test_an_org_with_an_active_subscription_gets_409(api, org, customer, stripe_standin, stripe_catalog):
    subscribe(stripe_standin, org, stripe_catalog["pro"])

    response = api.post(url(org), {**BODY, "plan": "team"}, format="json")

    assert (response.status_code, response.json()["error"]["code"]) == (409, "subscription_exists")
    assert not stripe_standin.requests_to("POST", "/v1/checkout/sessions")


def test_a_canceled_subscription_does_not_block(api, org, customer, stripe_standin, stripe_catalog):
    subscribe(stripe_standin, org, stripe_catalog["pro"], status="canceled")

    assert api.post(url(org), BODY, format="json").status_code == 201


@pytest.mark.parametrize("role", [Role.ADMIN, Role.BILLING])
def test_admins_and_billing_members_may_check_out(api, org, stripe_catalog, role):
    upsert_membership(org=org, user_id=MEMBER, role=role, actor=Actor.system("t"))

    assert api.post(url(org), {**BODY, "user_id": MEMBER}, format="json").status_code == 201


def test_a_plain_member_may_not(api, org, stripe_standin, stripe_catalog):
    before = len(stripe_standin.requests)

    response = api.post(url(org), {**BODY, "user_id": MEMBER}, format="json")

    assert (response.status_code, response.json()["error"]["code"]) == (403, "insufficient_role")
    assert len(stripe_standin.requests) == before


def test_an_outsider_may_not(api, org, other_org, stripe_standin, stripe_catalog):
    response = api.post(url(org), {**BODY, "user_id": OUTSIDER}, format="json")

    assert (response.status_code, response.json()["error"]["code"]) == (403, "not_a_member")
    assert not CheckoutSession.objects.exists()


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"plan": "free"}, "invalid_request"),
        ({"plan": "enterprise"}, "invalid_request"),
        ({"success_url": "nope"}, "invalid_request"),
        ({"coupon": "X"}, "unknown_field"),
    ],
)
def test_bad_input_is_400_and_reaches_no_stripe(api, org, stripe_standin, stripe_catalog, change, code):
    before = len(stripe_standin.requests)

    response = api.post(url(org), {**BODY, **change}, format="json")

    assert (response.status_code, response.json()["error"]["code"]) == (400, code)
    assert len(stripe_standin.requests) == before


def test_stripe_down_is_503_and_nothing_stays_open(api, org, stripe_standin, stripe_catalog, monkeypatch):
    monkeypatch.setattr("stripe.max_network_retries", 0)
    stripe_standin.fail_next("POST", "/v1/checkout/sessions", status=503)

    response = api.post(url(org), BODY, format="json")

    assert (response.status_code, response.json()["error"]["code"]) == (503, "stripe_unavailable")
    assert not CheckoutSession.objects.exists()
    assert api.post(url(org), BODY, format="json").status_code == 201


def test_before_the_catalog_is_published_it_says_so(api, org, catalog, stripe_standin):
    response = api.post(url(org), BODY, format="json")

    assert (response.status_code, response.json()["error"]["code"]) == (503, "stripe_catalog_missing")


def test_it_answers_404_for_an_unknown_org_and_401_without_a_key(api, org, stripe_catalog):
    assert api.post("/api/v1/orgs/org_none/checkout-sessions", BODY, format="json").status_code == 404
    assert APIClient().post(url(org), BODY, format="json").status_code == 401
