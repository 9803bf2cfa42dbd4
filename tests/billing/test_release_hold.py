from decimal import Decimal as D

import pytest

from billing.models import Hold, HoldState
from billing.services.holds import reserve_credits
from tests.conftest import FREE_CREDITS, MEMBER, as_api
from usage.services.holds import commit_hold

pytestmark = pytest.mark.django_db


@pytest.fixture
def hold(org, catalog, product):
    return reserve_credits(
        org_id=org.public_id,
        product=product,
        user_id=MEMBER,
        metric="fix_run",
        quantity=D(2),
        idempotency_key="k",
        ttl_seconds=600,
    )[0]


def url(hold):
    return f"/api/v1/holds/{hold.public_id}:release"


def test_it_releases_and_releasing_twice_is_harmless(api, hold):
    first = api.post(url(hold))
    second = api.post(url(hold))

    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json() == {"hold_id": hold.public_id, "state": "released"}
    assert Hold.objects.get(pk=hold.pk).state == HoldState.RELEASED


def test_a_released_hold_no_longer_counts(api, org, hold):
    api.post(url(hold))

    assert api.get(f"/api/v1/orgs/{org.public_id}/credits").json()["balance"] == as_api(FREE_CREDITS)


def test_releasing_a_committed_hold_is_409(api, hold, product):
    commit_hold(product=product, hold_id=hold.public_id, event_id="e-1")

    response = api.post(url(hold))

    assert (response.status_code, response.json()["error"]["code"]) == (409, "hold_not_active")


def test_another_products_hold_does_not_exist(other_api, hold):
    response = other_api.post(url(hold))

    assert (response.status_code, response.json()["error"]["code"]) == (404, "hold_not_found")
    assert Hold.objects.get(pk=hold.pk).state == HoldState.ACTIVE
