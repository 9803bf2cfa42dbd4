from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from billing.models import CreditGrant, Hold, LedgerEntry, PaymentStatus, SuspensionSource
from billing.services.holds import reserve_credits
from tests.conftest import FIX_RUN, FREE_CREDITS, MEMBER, OUTSIDER, as_api, client_with, set_plan

pytestmark = pytest.mark.django_db
URL = "/api/v1/entitlements:check"


def check(api, org, **body):
    return api.post(
        URL, {"org_id": org.public_id, "user_id": MEMBER, "metric": "fix_run", **body}, format="json"
    )


def test_a_member_with_credits_is_allowed(api, org, catalog):
    response = check(api, org, quantity="4")

    assert response.status_code == 200
    assert response.json() == {
        "allowed": True,
        "reason": "ok",
        "org_id": org.public_id,
        "metric": "fix_run",
        "quantity": "4.000000",
        "cost": "10.000000",
        "balance": as_api(FREE_CREDITS),
        "posted_balance": as_api(FREE_CREDITS),
        "plan": "free",
        "payment_status": "ok",
    }


def test_quantity_defaults_to_one_and_cost_rounds_half_to_even(api, org, catalog):
    assert check(api, org).json()["cost"] == "2.500000"
    # Halves go to the even neighbour: 0.0000015 → 0.000002, but 0.0000025 → 0.000002 (not ...003).
    assert check(api, org, metric="token", quantity="0.5").json()["cost"] == "0.000002"
    assert check(api, org, quantity="0.000001").json()["cost"] == "0.000002"
    assert check(api, org, metric="token", quantity="0.166667").json()["cost"] == "0.000001"


def test_it_writes_nothing(api, org, catalog):
    entries, holds = LedgerEntry.objects.count(), Hold.objects.count()

    check(api, org, quantity="10000")

    assert (LedgerEntry.objects.count(), Hold.objects.count()) == (entries, holds)


def test_an_unknown_org_is_404_before_anything_else(api, catalog):
    response = api.post(URL, {"org_id": "org_none", "user_id": OUTSIDER, "metric": "nope"}, format="json")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "org_not_found"


def test_a_metric_without_a_price_for_this_product_is_400(api, other_api, org, catalog):
    assert (
        check(api, org, metric="build_minute", user_id=OUTSIDER).json()["error"]["code"] == "unknown_metric"
    )
    assert check(other_api, org, metric="build_minute").status_code == 200


def test_an_outsider_is_not_a_member(api, org, other_org, catalog):
    response = check(api, org, user_id=OUTSIDER)

    assert response.status_code == 403
    body = response.json()
    assert (body["allowed"], body["reason"], body["error"]["code"]) == (False, "not_a_member", "not_a_member")


def test_suspension_comes_before_payment_state_and_credits(api, org, catalog):
    set_plan(
        org,
        "free",
        suspended_at=timezone.now(),
        suspension_source=SuspensionSource.MANUAL,
        payment_status=PaymentStatus.BLOCKED,
    )

    response = check(api, org, quantity="100000")

    assert (response.status_code, response.json()["reason"]) == (402, "billing_suspended")


def test_a_blocked_payment_comes_before_credits(api, org, catalog):
    set_plan(org, "pro", payment_status=PaymentStatus.BLOCKED)

    response = check(api, org)

    assert (response.status_code, response.json()["reason"]) == (402, "payment_blocked")
    assert response.json()["payment_status"] == "blocked"


def test_past_due_alone_does_not_block(api, org, catalog):
    set_plan(org, "pro", payment_status=PaymentStatus.PAST_DUE)

    assert check(api, org).json()["reason"] == "ok"


def test_no_overage_and_too_few_credits_is_402(api, org, catalog):
    runs = FREE_CREDITS / FIX_RUN  # exactly the month's credits
    response = check(api, org, quantity=str(runs + D("0.000001")))

    assert (response.status_code, response.json()["reason"]) == (402, "insufficient_credits")
    assert response.json()["error"]["message"]
    assert check(api, org, quantity=str(runs)).status_code == 200


def test_an_overage_plan_is_allowed_beyond_its_balance(api, org, catalog):
    set_plan(org, "pro")

    response = check(api, org, quantity="1000000")

    assert (response.status_code, response.json()["plan"]) == (200, "pro")


def test_active_holds_reduce_the_balance_and_expired_ones_do_not(api, org, catalog, product):
    for key, minutes in (("live", 10), ("gone", -1)):
        reserve_credits(
            org_id=org.public_id,
            product=product,
            user_id=MEMBER,
            metric="fix_run",
            quantity=D(100),
            idempotency_key=key,
            ttl_seconds=60,
            now=timezone.now() + timedelta(minutes=minutes) - timedelta(seconds=60),
        )

    body = check(api, org).json()

    live_hold = 100 * FIX_RUN
    assert (body["balance"], body["posted_balance"]) == (
        as_api(FREE_CREDITS - live_hold),
        as_api(FREE_CREDITS),
    )
    too_much = (FREE_CREDITS - live_hold) / FIX_RUN + D("0.000001")
    assert check(api, org, quantity=str(too_much)).json()["reason"] == "insufficient_credits"


def test_expired_grants_do_not_count(api, org, catalog):
    CreditGrant.objects.filter(org=org).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert check(api, org).json()["reason"] == "insufficient_credits"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"quantity": "-1"}, "invalid_request"),
        ({"quantity": 1.0000001}, "invalid_request"),
        ({"user_id": None}, "invalid_request"),
        ({"colour": "red"}, "unknown_field"),
    ],
)
def test_bad_input_is_400(api, org, catalog, body, code):
    response = check(api, org, **body)

    assert (response.status_code, response.json()["error"]["code"]) == (400, code)


def test_it_needs_a_key(org, catalog):
    response = APIClient().post(
        URL, {"org_id": org.public_id, "user_id": MEMBER, "metric": "fix_run"}, format="json"
    )

    assert response.status_code == 401


def test_a_bad_key_answers_401_before_a_bad_body(org, catalog, api_key):
    wrong = api_key[:-1] + ("x" if api_key[-1] != "x" else "y")

    bad_body = client_with(wrong).post(URL, {"org_id": org.public_id, "colour": "red"}, format="json")
    good_body = client_with(wrong).post(
        URL, {"org_id": org.public_id, "user_id": MEMBER, "metric": "fix_run"}, format="json"
    )
    no_key = APIClient().post(URL, {"colour": "red"}, format="json")

    for response in (bad_body, good_body, no_key):
        assert (response.status_code, response.json()["error"]["code"]) == (401, "unauthenticated")
        assert response["WWW-Authenticate"] == "Api-Key"


def test_a_revoked_or_expired_key_is_refused(org, catalog, api_key):
    from datetime import timedelta

    from orgs.models import ProductAPIKey

    ProductAPIKey.objects.update(expiry_date=timezone.now() - timedelta(seconds=1))
    expired = client_with(api_key).post(
        URL, {"org_id": org.public_id, "user_id": MEMBER, "metric": "fix_run"}, format="json"
    )
    ProductAPIKey.objects.update(expiry_date=None, revoked=True)
    revoked = client_with(api_key).post(
        URL, {"org_id": org.public_id, "user_id": MEMBER, "metric": "fix_run"}, format="json"
    )

    assert (expired.status_code, revoked.status_code) == (401, 401)


def test_a_good_key_and_a_bad_body_is_400(api, org, catalog):
    response = api.post(URL, {"org_id": org.public_id}, format="json")

    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_request")
