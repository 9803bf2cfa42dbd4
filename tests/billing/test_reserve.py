from decimal import Decimal as D

import pytest
from rest_framework.test import APIClient

from billing.models import Hold, HoldState
from billing.services.grants import grant_credits
from orgs.services.audit import Actor
from tests.concurrency import committing, run_concurrently
from tests.conftest import FIX_RUN, FREE_CREDITS, MEMBER, OUTSIDER, OWNER, as_api, client_with, set_plan
from tests.factories import OrganizationFactory

URL = "/api/v1/entitlements:reserve"


def body(org, **changes):
    return {
        "org_id": org.public_id,
        "user_id": MEMBER,
        "metric": "fix_run",
        "quantity": "40",
        "idempotency_key": "op-1",
        **changes,
    }


@pytest.mark.django_db
def test_it_holds_the_cost_and_the_balance_drops_at_once(api, org, catalog, product):
    response = api.post(URL, body(org), format="json")

    assert response.status_code == 201
    result = response.json()
    assert (result["allowed"], result["reason"], result["cost"], result["balance"]) == (
        True,
        "ok",
        "100.000000",
        as_api(FREE_CREDITS - 100),
    )
    hold = Hold.objects.get(public_id=result["hold_id"])
    assert (hold.state, hold.product, hold.cost, hold.user_id) == (HoldState.ACTIVE, product, D(100), MEMBER)
    assert (hold.expires_at - hold.created_at).total_seconds() == pytest.approx(900, abs=2)
    check = api.post(
        "/api/v1/entitlements:check",
        {"org_id": org.public_id, "user_id": MEMBER, "metric": "fix_run"},
        format="json",
    )
    assert check.json()["balance"] == as_api(FREE_CREDITS - 100)


@pytest.mark.django_db
def test_the_same_key_again_returns_the_same_hold(api, org, catalog):
    first = api.post(URL, body(org), format="json").json()

    again = api.post(URL, body(org), format="json")

    assert again.status_code == 200
    assert again.json()["hold_id"] == first["hold_id"]
    assert Hold.objects.count() == 1


@pytest.mark.django_db
def test_the_same_key_with_another_body_is_a_conflict(api, org, catalog):
    api.post(URL, body(org), format="json")

    response = api.post(URL, body(org, quantity="41"), format="json")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_conflict"
    assert Hold.objects.count() == 1


@pytest.mark.django_db
def test_a_denial_answers_like_the_check_and_holds_nothing(api, org, catalog):
    outsider = api.post(URL, body(org, user_id=OUTSIDER), format="json")
    runs = str(FREE_CREDITS / FIX_RUN + D("0.4"))
    too_much = api.post(URL, body(org, quantity=runs, idempotency_key="op-2"), format="json")

    assert (outsider.status_code, outsider.json()["reason"]) == (403, "not_a_member")
    assert (too_much.status_code, too_much.json()["error"]["code"]) == (402, "insufficient_credits")
    assert too_much.json()["balance"] == as_api(FREE_CREDITS)
    assert not Hold.objects.exists()


@pytest.mark.django_db
def test_holds_are_written_on_overage_plans_too(api, org, catalog):
    set_plan(org, "pro")

    runs = FREE_CREDITS  # costs FIX_RUN times the balance

    response = api.post(URL, body(org, quantity=str(runs)), format="json")

    assert response.status_code == 201
    assert response.json()["balance"] == as_api(FREE_CREDITS - runs * FIX_RUN)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"quantity": "0"}, "quantity"),
        ({"ttl_seconds": 0}, "ttl_seconds"),
        ({"ttl_seconds": 86_401}, "ttl_seconds"),
        ({"idempotency_key": None}, "idempotency_key"),
    ],
)
def test_bad_input_is_400_and_holds_nothing(api, org, catalog, changes, field):
    response = api.post(URL, body(org, **changes), format="json")

    assert response.status_code == 400
    assert field in response.json()["error"]["details"]["fields"]
    assert not Hold.objects.exists()


@pytest.mark.django_db
def test_an_unknown_org_or_metric(api, org, catalog):
    assert api.post(URL, body(org, org_id="org_none"), format="json").status_code == 404
    assert api.post(URL, body(org, metric="nope"), format="json").json()["error"]["code"] == "unknown_metric"


@pytest.mark.django_db
def test_it_needs_a_key(org, catalog):
    assert APIClient().post(URL, body(org), format="json").status_code == 401
    assert not Hold.objects.exists()


@committing
def test_concurrent_reserves_never_overdraw_a_plan_without_overage(api_key, catalog):
    org = OrganizationFactory(owner_user_id=OWNER)  # the free plan: no overage
    cost = FREE_CREDITS * D("0.3")  # three fit, a fourth does not

    def reserve(index):
        response = client_with(api_key).post(
            URL,
            body(org, user_id=OWNER, quantity=str(cost / FIX_RUN), idempotency_key=f"op-{index}"),
            format="json",
        )
        return response.status_code

    statuses = run_concurrently(reserve, 10)

    assert sorted(statuses) == [201] * 3 + [402] * 7
    assert sum(hold.cost for hold in Hold.objects.filter(org=org)) == 3 * cost


@committing
def test_concurrent_reserves_and_a_grant_stay_consistent(api_key, catalog):
    org = OrganizationFactory(owner_user_id=OWNER)
    cost, bonus = D(300), D(600)

    def work(index):
        if index == 0:
            grant_credits(org=org, amount=bonus, grant_type="bonus", reason="x", actor=Actor.system("t"))
            return "granted"
        runs = str(cost / FIX_RUN)
        response = client_with(api_key).post(
            URL, body(org, user_id=OWNER, quantity=runs, idempotency_key=f"op-{index}"), format="json"
        )
        return response.status_code

    results = run_concurrently(work, 8)

    held = sum(hold.cost for hold in Hold.objects.filter(org=org))
    assert held <= FREE_CREDITS + bonus
    # Before or after the grant landed: never more than fits.
    assert results.count(201) in (FREE_CREDITS // cost, min((FREE_CREDITS + bonus) // cost, 7))
