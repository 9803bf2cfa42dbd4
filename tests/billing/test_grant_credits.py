from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from billing.models import CreditBalance, CreditGrant, GrantType, LedgerEntry
from orgs.models import AuditEntry
from tests.concurrency import committing, run_concurrently
from tests.conftest import FREE_CREDITS, client_with
from tests.factories import OrganizationFactory

BODY = {"amount": "250.5", "grant_type": "bonus", "reason": "sorry for the outage", "idempotency_key": "k-1"}


def url(org):
    return f"/api/v1/orgs/{org.public_id}/credits/grants"


def manual_grants(org):
    return CreditGrant.objects.filter(org=org).exclude(grant_type=GrantType.ALLOWANCE)


@pytest.mark.django_db
def test_it_grants_credits(api, org, catalog):
    response = api.post(url(org), BODY, format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["id"].startswith("cg_")
    assert (body["grant_type"], body["amount"], body["remaining"], body["expires_at"]) == (
        "bonus",
        "250.500000",
        "250.500000",
        None,
    )
    assert CreditBalance.objects.get(org=org).posted == FREE_CREDITS + D("250.5")
    entry = AuditEntry.objects.get(org=org, action="credits.granted")
    assert (entry.actor_product.slug, entry.reason) == ("red", "sorry for the outage")


@pytest.mark.django_db
def test_the_same_key_again_returns_the_original_and_writes_nothing(api, org, catalog):
    first = api.post(url(org), BODY, format="json")
    entries = LedgerEntry.objects.count()

    second = api.post(url(org), {**BODY, "amount": 250.5}, format="json")  # a number, the same amount

    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json() == first.json()
    assert manual_grants(org).count() == 1
    assert LedgerEntry.objects.count() == entries


@pytest.mark.django_db
def test_the_same_key_with_another_body_is_a_conflict(api, org, catalog):
    api.post(url(org), BODY, format="json")

    response = api.post(url(org), {**BODY, "amount": "300"}, format="json")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_conflict"
    assert manual_grants(org).count() == 1


@pytest.mark.django_db
def test_keys_are_scoped_to_the_product(api, other_api, org, catalog):
    api.post(url(org), BODY, format="json")

    response = other_api.post(url(org), BODY, format="json")

    assert response.status_code == 201
    assert manual_grants(org).count() == 2


@pytest.mark.django_db
def test_keys_are_scoped_to_the_org(api, org, other_org, catalog):
    api.post(url(org), BODY, format="json")

    assert api.post(url(other_org), BODY, format="json").status_code == 201


@pytest.mark.django_db
def test_bonus_type_is_an_unknown_field_and_nothing_is_written(api, org, catalog):
    body = {"amount": "10", "bonus_type": "bonus", "reason": "x", "idempotency_key": "k-2"}

    response = api.post(url(org), body, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_field"
    assert "bonus_type" in response.json()["error"]["details"]["fields"]
    assert not manual_grants(org).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": "0"}, "amount"),
        ({"amount": "-5"}, "amount"),
        ({"amount": "1.0000001"}, "amount"),
        ({"amount": "lots"}, "amount"),
        ({"grant_type": "allowance"}, "grant_type"),
        ({"reason": ""}, "reason"),
        ({"expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
        ({"idempotency_key": ""}, "idempotency_key"),
    ],
)
def test_it_rejects_invalid_grants(api, org, catalog, change, field):
    response = api.post(url(org), {**BODY, **change}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert field in response.json()["error"]["details"]["fields"]
    assert not manual_grants(org).exists()


@pytest.mark.django_db
def test_a_grant_above_the_products_limit_is_refused(api, org, catalog):
    response = api.post(url(org), {**BODY, "amount": "5000.000001"}, format="json")  # red's limit: 5000

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "grant_limit_exceeded"
    assert not manual_grants(org).exists()
    assert api.post(url(org), {**BODY, "amount": "5000"}, format="json").status_code == 201


@pytest.mark.django_db
def test_an_expiring_grant_keeps_its_expiry(api, org, catalog):
    expires_at = (timezone.now() + timedelta(days=30)).replace(microsecond=0)

    response = api.post(url(org), {**BODY, "expires_at": expires_at.isoformat()}, format="json")

    assert CreditGrant.objects.get(public_id=response.json()["id"]).expires_at == expires_at


@pytest.mark.django_db
def test_it_answers_404_for_an_unknown_org(api, catalog):
    assert api.post("/api/v1/orgs/org_none/credits/grants", BODY, format="json").json()["error"]["code"] == (
        "org_not_found"
    )


@pytest.mark.django_db
def test_it_rejects_outsider_without_a_key(org, catalog):
    assert APIClient().post(url(org), BODY, format="json").status_code == 401
    assert not manual_grants(org).exists()


@committing
def test_concurrent_grants_with_one_key_make_one_grant(api_key, catalog):
    org = OrganizationFactory()

    statuses = run_concurrently(
        lambda _: client_with(api_key).post(url(org), BODY, format="json").status_code, 8
    )

    assert sorted(statuses) == [200] * 7 + [201]
    assert manual_grants(org).count() == 1
    assert CreditBalance.objects.get(org=org).posted == FREE_CREDITS + D("250.5")
