"""Spend caps: checks and reserves that would take the month's overage past the cap are refused
(402 spend_cap_reached, after payment_blocked); usage reported anyway is recorded and billed."""

from dataclasses import replace
from datetime import date
from decimal import Decimal as D

import pytest
import time_machine
from django.db import transaction
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.entitlements import EntitlementState, decide
from billing.models import CreditBalance, Hold, PaymentStatus
from billing.services.debits import debit_usage
from orgs.models import AuditEntry, EventType, OutgoingEvent
from orgs.services.audit import Actor
from orgs.services.event_endpoints import create_endpoint
from tests.concurrency import committing, run_concurrently
from tests.conftest import FIX_RUN, MEMBER, OUTSIDER, OWNER, client_with, set_plan
from tests.factories import OrganizationFactory

NOW = "2026-11-18T10:00:00Z"
CHECK, RESERVE = "/api/v1/entitlements:check", "/api/v1/entitlements:reserve"


def cap_url(org):
    return f"/api/v1/orgs/{org.public_id}/spend-cap"


def available(api, org):
    return D(api.get(f"/api/v1/orgs/{org.public_id}/credits").json()["balance"])


def runs(credits):
    return str(D(credits) / FIX_RUN)


def use(org, credits):
    with transaction.atomic():
        debit_usage(costs_by_org={org.pk: [(1, D(credits))]}, reference="test")


@pytest.fixture
def pro_org(org, catalog):
    set_plan(org, "pro")
    return org


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
def test_owners_set_and_remove_the_cap(api, pro_org):
    response = api.put(cap_url(pro_org), {"monthly_overage_credits": "100", "user_id": OWNER}, format="json")

    assert response.status_code == 200
    assert response.json() == {"monthly_overage_credits": "100.000000", "month_overage": "0.000000"}
    assert CreditBalance.objects.get(org=pro_org).monthly_overage_cap == D(100)
    again = api.put(cap_url(pro_org), {"monthly_overage_credits": "100", "user_id": OWNER}, format="json")
    assert again.json() == response.json()
    assert AuditEntry.objects.filter(org=pro_org, action="credits.spend_cap_set").count() == 1  # set once

    removed = api.put(cap_url(pro_org), {"monthly_overage_credits": None, "user_id": OWNER}, format="json")

    assert removed.json()["monthly_overage_credits"] is None
    assert CreditBalance.objects.get(org=pro_org).monthly_overage_cap is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"monthly_overage_credits": "100", "user_id": MEMBER}, 403, "insufficient_role"),
        ({"monthly_overage_credits": "100", "user_id": OUTSIDER}, 403, "not_a_member"),
        ({"monthly_overage_credits": "-1", "user_id": OWNER}, 400, "invalid_request"),
        ({"user_id": OWNER}, 400, "invalid_request"),
        ({"monthly_overage_credits": "1", "user_id": OWNER, "hard": True}, 400, "unknown_field"),
    ],
)
def test_refused_requests_change_nothing(api, pro_org, other_org, body, status, code):
    response = api.put(cap_url(pro_org), body, format="json")

    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    assert CreditBalance.objects.get(org=pro_org).monthly_overage_cap is None


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
def test_check_and_reserve_stop_at_the_cap_and_reported_usage_is_still_billed(api, pro_org):
    api.put(cap_url(pro_org), {"monthly_overage_credits": "100", "user_id": OWNER}, format="json")
    room = available(api, pro_org) + 100
    body = {"org_id": pro_org.public_id, "user_id": MEMBER, "metric": "fix_run"}

    fits = api.post(CHECK, {**body, "quantity": runs(room)}, format="json")
    over = api.post(CHECK, {**body, "quantity": runs(room + FIX_RUN)}, format="json")
    reserve = api.post(
        RESERVE, {**body, "quantity": runs(room + FIX_RUN), "idempotency_key": "r"}, format="json"
    )

    assert fits.json()["allowed"] is True
    assert (over.status_code, over.json()["reason"]) == (402, "spend_cap_reached")
    assert (reserve.status_code, reserve.json()["reason"]) == (402, "spend_cap_reached")
    assert not Hold.objects.exists()

    use(pro_org, room + 50)  # reported without asking: recorded, its overage billed past the cap
    balance = CreditBalance.objects.get(org=pro_org)
    assert (balance.month_overage, balance.billed_debt) == (D(150), D(150))
    assert api.post(CHECK, {**body, "quantity": runs(FIX_RUN)}, format="json").json()["reason"] == (
        "spend_cap_reached"
    )


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
def test_payment_blocked_comes_before_the_cap(api, pro_org):
    api.put(cap_url(pro_org), {"monthly_overage_credits": "0", "user_id": OWNER}, format="json")
    set_plan(pro_org, "pro", payment_status=PaymentStatus.BLOCKED)
    body = {"org_id": pro_org.public_id, "user_id": MEMBER, "metric": "fix_run", "quantity": "100000"}

    assert api.post(CHECK, body, format="json").json()["reason"] == "payment_blocked"


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
def test_last_months_overage_does_not_count(api, pro_org):
    api.put(cap_url(pro_org), {"monthly_overage_credits": "100", "user_id": OWNER}, format="json")
    CreditBalance.objects.filter(org=pro_org).update(month_overage=D(500), overage_month=date(2026, 10, 1))
    room = available(api, pro_org) + 100
    body = {"org_id": pro_org.public_id, "user_id": MEMBER, "metric": "fix_run", "quantity": runs(room)}

    assert api.post(CHECK, body, format="json").json()["allowed"] is True


@committing
def test_concurrent_reserves_never_pass_the_cap(api_key, catalog):
    org = OrganizationFactory(owner_user_id=OWNER)
    set_plan(org, "pro")
    client = client_with(api_key)
    client.put(cap_url(org), {"monthly_overage_credits": "100", "user_id": OWNER}, format="json")
    room = available(client, org) + 100
    cost = (room * 2 / 7).quantize(FIX_RUN)  # three fit under the cap, a fourth does not

    def reserve(index):
        response = client_with(api_key).post(
            RESERVE,
            {
                "org_id": org.public_id,
                "user_id": OWNER,
                "metric": "fix_run",
                "quantity": runs(cost),
                "idempotency_key": f"op-{index}",
            },
            format="json",
        )
        return response.status_code, response.json().get("reason")

    results = run_concurrently(reserve, 10)

    assert sorted(results) == [(201, "ok")] * 3 + [(402, "spend_cap_reached")] * 7
    assert sum(hold.cost for hold in Hold.objects.filter(org=org)) <= room


STATE = EntitlementState(
    org_pk=1,
    role="member",
    plan="pro",
    overage_allowed=True,
    payment_status=PaymentStatus.OK,
    suspended=False,
    posted=D(0),
    held=D(0),
    expired_unposted=D(0),
    metric_id=1,
    credits_per_unit=D(1),
)
credits = st.decimals(min_value=0, max_value=10**6, places=6)


@settings(max_examples=200, deadline=None)
@given(posted=st.decimals(min_value=-(10**5), max_value=10**6, places=6), cap=credits, month=credits,
       costs=st.lists(credits, max_size=12))  # fmt: skip
def test_reserves_allowed_one_after_another_never_pass_the_cap(posted, cap, month, costs):
    state = replace(STATE, posted=posted, spend_cap=cap, month_overage=month)
    for cost in costs:
        if decide(state, quantity=cost, cost=cost).allowed:
            state = replace(state, held=state.held + cost)
        # Whatever was allowed, spent in full, leaves the month's overage within the cap (or where it
        # already was, when reported usage had passed it).
        spent_overage = month + max(state.held - max(posted, D(0)), D(0))
        assert spent_overage <= max(cap, month)


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
def test_spend_cap_near_is_told_once_when_the_overage_crosses_80_percent(api, pro_org, product, receiver):
    create_endpoint(
        product=product,
        url=receiver.url,
        event_types=[EventType.SPEND_CAP_NEAR],
        actor=Actor.for_product(product),
    )
    api.put(cap_url(pro_org), {"monthly_overage_credits": "100", "user_id": OWNER}, format="json")
    base = available(api, pro_org)

    use(pro_org, base + 50)  # 50 % of the cap
    use(pro_org, 35)  # 85 %: crosses
    use(pro_org, 5)  # 90 %: already past

    (event,) = OutgoingEvent.objects.filter(org=pro_org, event_type=EventType.SPEND_CAP_NEAR)
    assert event.data["month_overage"] == "85.000000" and event.data["threshold"] == "80.000000"
