import pytest
from rest_framework.test import APIClient

from billing.models import BillingAccount, PaymentStatus, Plan, SuspensionSource
from billing.services.accounts import soft_delete_organization
from orgs.services.audit import Actor

pytestmark = pytest.mark.django_db


def url(org):
    return f"/api/v1/orgs/{org.public_id}"


def test_it_returns_the_org_with_its_billing_state(api, org):
    BillingAccount.objects.filter(org=org).update(
        plan=Plan.objects.get(name="pro"),
        payment_status=PaymentStatus.PAST_DUE,
        suspended_at=org.created_at,
        suspension_source=SuspensionSource.MANUAL,
    )

    response = api.get(url(org))

    assert response.status_code == 200
    assert response.json() == {
        "id": org.public_id,
        "name": org.name,
        "slug": org.slug,
        "billing_email": org.billing_email,
        "plan": "pro",
        "payment_status": "past_due",
        "suspended": True,
        "pending_plan": None,
        "pending_plan_at": None,
        "created_at": org.created_at.isoformat().replace("+00:00", "Z"),
    }


def test_it_answers_404_for_an_unknown_org(api):
    response = api.get("/api/v1/orgs/org_doesnotexist")

    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "code": "org_not_found",
            "message": "No such organization.",
            "details": {"org_id": "org_doesnotexist"},
        }
    }


def test_a_soft_deleted_org_is_404(api, org):
    soft_delete_organization(org=org, actor=Actor.system("tests"), reason="closed")

    assert api.get(url(org)).json()["error"]["code"] == "org_not_found"


def test_it_never_answers_by_database_id(api, org):
    assert api.get(f"/api/v1/orgs/{org.pk}").status_code == 404


def test_it_rejects_outsider_without_a_key(org):
    response = APIClient().get(url(org))

    assert response.status_code == 401
    assert org.name not in response.content.decode()
