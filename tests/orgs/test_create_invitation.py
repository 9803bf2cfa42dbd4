import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from orgs.models import AuditEntry, Invitation
from tests.conftest import fill_seats

pytestmark = pytest.mark.django_db


def url(org):
    return f"/api/v1/orgs/{org.public_id}/invitations"


def test_it_creates_an_invitation_with_a_token_shown_once(api, org, product):
    response = api.post(url(org), {"email": "new@x.example", "role": "admin"}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "email", "role", "expires_at", "token"}
    assert body["id"].startswith("inv_")
    invitation = Invitation.objects.get(public_id=body["id"])
    assert invitation.token_hash == hashlib.sha256(body["token"].encode()).hexdigest()
    assert body["token"] not in str(Invitation.objects.values().get(pk=invitation.pk))
    assert invitation.product == product
    assert abs(invitation.expires_at - (timezone.now() + timedelta(days=7))) < timedelta(seconds=5)
    assert AuditEntry.objects.filter(org=org, action="invitation.created").count() == 1


def test_pending_invitations_hold_seats(api, org):
    fill_seats(org, leave=1)  # this invitation takes the last seat
    assert api.post(url(org), {"email": "a@x.example", "role": "member"}, format="json").status_code == 201

    response = api.post(url(org), {"email": "b@x.example", "role": "member"}, format="json")

    assert response.status_code == 402
    assert response.json()["error"]["code"] == "seat_limit_reached"
    assert not Invitation.objects.filter(email="b@x.example").exists()


def test_inviting_the_same_email_again_supersedes_the_pending_invitation(api, org):
    first = api.post(url(org), {"email": "a@x.example", "role": "member"}, format="json").json()

    second = api.post(url(org), {"email": "A@x.example", "role": "admin"}, format="json")

    assert second.status_code == 201  # the old one no longer holds the last seat
    assert Invitation.objects.get(public_id=first["id"]).revoked_at is not None
    assert AuditEntry.objects.filter(org=org, action="invitation.revoked").count() == 1


def test_it_rejects_an_unknown_field_and_writes_nothing(api, org):
    response = api.post(url(org), {"email": "a@x.example", "role": "member", "ttl": 3}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_field"
    assert not Invitation.objects.exists()


def test_it_rejects_invalid_fields(api, org):
    response = api.post(url(org), {"email": "nope", "role": "king"}, format="json")

    assert response.status_code == 400
    assert set(response.json()["error"]["details"]["fields"]) == {"email", "role"}
    assert not Invitation.objects.exists()


def test_it_answers_404_for_an_unknown_org(api):
    response = api.post(
        "/api/v1/orgs/org_x/invitations", {"email": "a@x.example", "role": "member"}, format="json"
    )

    assert response.json()["error"]["code"] == "org_not_found"


def test_it_rejects_outsider_without_a_key(org):
    response = APIClient().post(url(org), {"email": "a@x.example", "role": "owner"}, format="json")

    assert response.status_code == 401
    assert not Invitation.objects.exists()
