from datetime import timedelta
from decimal import Decimal as D

import pytest
import time_machine
from django.utils import timezone

from billing.models import CreditBalance, Hold, HoldState, LedgerEntry
from billing.services.holds import reserve_credits
from tests.conftest import FREE_CREDITS, MEMBER
from usage.models import UsageEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def hold(org, catalog, product):
    return reserve_credits(
        org_id=org.public_id,
        product=product,
        user_id=MEMBER,
        metric="fix_run",
        quantity=D(4),
        idempotency_key="k",
        ttl_seconds=600,
    )[0]


def commit(api, hold, **body):
    return api.post(f"/api/v1/holds/{hold.public_id}:commit", {"event_id": "e-1", **body}, format="json")


def test_it_records_the_usage_and_ends_the_hold(api, org, hold):
    response = commit(api, hold)

    assert response.status_code == 200
    assert response.json() == {
        "hold_id": hold.public_id,
        "state": "committed",
        "event_id": "e-1",
        "cost": "10.000000",
        "hold_expired": False,
    }
    event = UsageEvent.objects.get(event_id="e-1")
    assert (event.org, event.metric, event.quantity, event.cost, event.user_id) == (
        org,
        "fix_run",
        D(4),
        D(10),
        MEMBER,
    )
    assert CreditBalance.objects.get(org=org).posted == FREE_CREDITS - 10
    assert api.get(f"/api/v1/orgs/{org.public_id}/credits").json()["balance"] == f"{FREE_CREDITS - 10:.6f}"


def test_committing_again_with_the_same_event_id_writes_nothing(api, hold):
    first = commit(api, hold)
    entries = LedgerEntry.objects.count()

    second = commit(api, hold)

    assert (second.status_code, second.json()) == (200, first.json())
    assert UsageEvent.objects.count() == 1
    assert LedgerEntry.objects.count() == entries


def test_another_event_id_on_a_committed_hold_is_409(api, hold):
    commit(api, hold)

    response = commit(api, hold, event_id="e-2")

    assert (response.status_code, response.json()["error"]["code"]) == (409, "hold_not_active")


def test_a_released_hold_cannot_be_committed(api, hold):
    api.post(f"/api/v1/holds/{hold.public_id}:release")

    response = commit(api, hold)

    assert (response.status_code, response.json()["error"]["code"]) == (409, "hold_not_active")
    assert not UsageEvent.objects.exists()


@pytest.mark.parametrize(("quantity", "cost"), [("10", "25.000000"), ("1", "2.500000"), ("0", "0.000000")])
def test_the_actual_quantity_may_differ(api, hold, quantity, cost):
    assert commit(api, hold, quantity=quantity).json()["cost"] == cost


def test_an_expired_hold_is_still_committed_and_says_so(api, hold):
    with time_machine.travel(timezone.now() + timedelta(minutes=11), tick=False):
        response = commit(api, hold)

    assert response.status_code == 200
    assert response.json()["hold_expired"] is True
    assert UsageEvent.objects.filter(event_id="e-1").exists()


def test_an_event_id_already_used_elsewhere_is_a_conflict(api, org, hold):
    event = {
        "event_id": "e-1",
        "org_id": org.public_id,
        "metric": "fix_run",
        "quantity": "1",
        "occurred_at": timezone.now().isoformat(),
    }
    api.post("/api/v1/usage/events", {"events": [event]}, format="json")

    response = commit(api, hold)

    assert (response.status_code, response.json()["error"]["code"]) == (409, "idempotency_conflict")
    assert Hold.objects.get(pk=hold.pk).state == HoldState.ACTIVE


def test_another_products_hold_does_not_exist(other_api, hold):
    assert commit(other_api, hold).json()["error"]["code"] == "hold_not_found"


def test_bad_input_is_400(api, hold):
    assert commit(api, hold, quantity="-1").status_code == 400
    assert commit(api, hold, extra=1).json()["error"]["code"] == "unknown_field"
    assert not UsageEvent.objects.exists()
