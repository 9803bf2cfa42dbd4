from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from billing.models import CreditGrant, GrantType
from billing.services.grants import grant_credits
from billing.services.holds import reserve_credits
from orgs.services.audit import Actor
from tests.conftest import FIX_RUN, FREE_CREDITS, OWNER, as_api

pytestmark = pytest.mark.django_db


def url(org):
    return f"/api/v1/orgs/{org.public_id}/credits"


def test_it_shows_balance_grants_and_holds(api, org, catalog, product):
    bonus, _ = grant_credits(
        org=org,
        amount=D(100),
        grant_type=GrantType.BONUS,
        reason="x",
        actor=Actor.system("t"),
        expires_at=timezone.now() + timedelta(days=3),
    )
    hold, _, _ = reserve_credits(
        org_id=org.public_id,
        product=product,
        user_id=OWNER,
        metric="fix_run",
        quantity=D(4),
        idempotency_key="h",
        ttl_seconds=600,
    )

    body = api.get(url(org)).json()

    posted = FREE_CREDITS + 100  # the allowance and the bonus
    assert (body["balance"], body["posted_balance"]) == (as_api(posted - 4 * FIX_RUN), as_api(posted))
    allowance = CreditGrant.objects.get(org=org, grant_type=GrantType.ALLOWANCE)
    soonest_first = sorted([bonus, allowance], key=lambda grant: grant.expires_at)  # the month may end first
    assert [g["id"] for g in body["grants"]] == [grant.public_id for grant in soonest_first]
    assert {g["grant_type"] for g in body["grants"]} == {"bonus", "allowance"}
    assert set(body["grants"][0]) == {
        "id",
        "grant_type",
        "amount",
        "remaining",
        "expires_at",
        "created_at",
        "reason",
    }
    assert body["holds"] == [
        {"hold_id": hold.public_id, "cost": "10.000000", "expires_at": body["holds"][0]["expires_at"]}
    ]


def test_an_expired_hold_stops_counting_without_any_task(api, org, catalog, product):
    reserve_credits(
        org_id=org.public_id,
        product=product,
        user_id=OWNER,
        metric="fix_run",
        quantity=D(4),
        idempotency_key="h",
        ttl_seconds=60,
        now=timezone.now() - timedelta(minutes=2),
    )

    body = api.get(url(org)).json()

    assert (body["balance"], body["holds"]) == (as_api(FREE_CREDITS), [])


def test_an_expired_grant_stops_counting_before_the_expiry_job_runs(api, org, catalog):
    CreditGrant.objects.filter(org=org).update(expires_at=timezone.now() - timedelta(seconds=1))

    body = api.get(url(org)).json()

    assert (body["balance"], body["posted_balance"], body["grants"]) == ("0.000000", as_api(FREE_CREDITS), [])


def test_it_answers_404_for_an_unknown_org(api):
    assert api.get("/api/v1/orgs/org_none/credits").status_code == 404


def test_it_rejects_outsider_without_a_key(org):
    assert APIClient().get(url(org)).status_code == 401
