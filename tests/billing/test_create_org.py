import pytest

from billing.models import BillingAccount
from orgs.models import AuditEntry, Membership, Organization, Role
from tests.conftest import OWNER

pytestmark = pytest.mark.django_db

BODY = {"name": "Acme", "billing_email": "ap@acme.example"}


def test_it_creates_an_org_on_the_free_plan(api):
    response = api.post("/api/v1/orgs", BODY, format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["id"].startswith("org_")
    assert body == {
        "id": body["id"],
        "name": "Acme",
        "slug": "acme",
        "billing_email": "ap@acme.example",
        "plan": "free",
        "payment_status": "ok",
        "suspended": False,
        "pending_plan": None,
        "pending_plan_at": None,
        "created_at": body["created_at"],
    }
    org = Organization.objects.get(public_id=body["id"])
    assert BillingAccount.objects.get(org=org).plan.name == "free"
    assert AuditEntry.objects.filter(org=org, action="organization.created").count() == 1


def test_it_makes_the_owner_a_member_in_the_same_call(api):
    response = api.post(
        "/api/v1/orgs", {**BODY, "owner_user_id": OWNER, "owner_email": "o@acme.example"}, format="json"
    )

    assert response.status_code == 201
    membership = Membership.objects.get(org__public_id=response.json()["id"])
    assert (membership.user_id, membership.role, membership.email) == (OWNER, Role.OWNER, "o@acme.example")


def test_it_rejects_a_taken_slug(api):
    assert api.post("/api/v1/orgs", {**BODY, "slug": "acme"}, format="json").status_code == 201

    response = api.post("/api/v1/orgs", {**BODY, "slug": "acme"}, format="json")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "slug_taken"
    assert Organization.objects.count() == 1


def test_it_derives_a_free_slug_from_a_taken_name(api):
    first = api.post("/api/v1/orgs", BODY, format="json").json()
    second = api.post("/api/v1/orgs", BODY, format="json").json()

    assert first["slug"] == "acme"
    assert second["slug"].startswith("acme-") and second["slug"] != first["slug"]


def test_it_rejects_an_unknown_field_and_writes_nothing(api):
    response = api.post("/api/v1/orgs", {**BODY, "plan": "team"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_field"
    assert response.json()["error"]["details"]["fields"] == {"plan": ["This field is not known."]}
    assert Organization.objects.count() == 0
    assert not AuditEntry.objects.filter(org__isnull=False).exists()


def test_it_rejects_missing_and_invalid_fields(api):
    response = api.post("/api/v1/orgs", {"billing_email": "not-an-email", "slug": "Bad Slug"}, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert set(error["details"]["fields"]) == {"name", "billing_email", "slug"}
    assert Organization.objects.count() == 0


def test_it_requires_an_api_key(client):
    response = client.post("/api/v1/orgs", BODY, content_type="application/json")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
    assert Organization.objects.count() == 0
