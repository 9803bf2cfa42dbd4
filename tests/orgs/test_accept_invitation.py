from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from billing.models import Plan
from billing.services.accounts import soft_delete_organization
from orgs.models import AuditEntry, Membership, Role
from orgs.services.audit import Actor
from orgs.services.invitations import create_invitation, expire_invitations, revoke_invitation
from tests.concurrency import committing, run_concurrently
from tests.conftest import MEMBER, OWNER, client_with
from tests.factories import OrganizationFactory

URL = "/api/v1/invitations:accept"


def invite(org, email="new@x.example", role=Role.ADMIN):
    return create_invitation(org=org, email=email, role=role, actor=Actor.system("tests"))


@pytest.mark.django_db
def test_it_creates_the_membership(api, org):
    invitation, token = invite(org)

    response = api.post(URL, {"token": token, "user_id": "u-new"}, format="json")

    assert response.status_code == 201
    assert response.json()["created"] is True
    membership = Membership.objects.get(org=org, user_id="u-new")
    assert (membership.role, membership.email) == (Role.ADMIN, "new@x.example")
    invitation.refresh_from_db()
    assert (invitation.accepted_by, invitation.accepted_at is not None) == ("u-new", True)
    assert AuditEntry.objects.filter(org=org, action="invitation.accepted").count() == 1


@pytest.mark.django_db
def test_accepting_twice_as_the_same_user_is_harmless(api, org):
    _, token = invite(org)
    api.post(URL, {"token": token, "user_id": "u-new"}, format="json")
    entries = AuditEntry.objects.count()

    response = api.post(URL, {"token": token, "user_id": "u-new"}, format="json")

    assert response.status_code == 200
    assert response.json()["created"] is False
    assert Membership.objects.filter(org=org, user_id="u-new").count() == 1
    assert AuditEntry.objects.count() == entries


@pytest.mark.django_db
def test_it_refuses_a_second_user(api, org):
    _, token = invite(org)
    api.post(URL, {"token": token, "user_id": "u-first"}, format="json")

    response = api.post(URL, {"token": token, "user_id": "u-second"}, format="json")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invitation_already_accepted"
    assert not Membership.objects.filter(user_id="u-second").exists()


@pytest.mark.django_db
def test_an_existing_member_gets_the_higher_role(api, org):
    _, token = invite(org, role=Role.ADMIN)

    response = api.post(URL, {"token": token, "user_id": MEMBER}, format="json")

    assert response.status_code == 200
    assert response.json()["role"] == "admin"


@pytest.mark.django_db
def test_an_existing_member_is_never_demoted(api, org):
    _, token = invite(org, role=Role.MEMBER)

    response = api.post(URL, {"token": token, "user_id": OWNER}, format="json")

    assert response.status_code == 200
    assert Membership.objects.get(org=org, user_id=OWNER).role == Role.OWNER


@pytest.mark.django_db
def test_an_unknown_token_is_404(api, org):
    response = api.post(URL, {"token": "nope", "user_id": "u"}, format="json")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "invitation_not_found"


@pytest.mark.django_db
def test_an_expired_invitation_is_410_before_and_after_the_job_marks_it(api, org):
    _, token = invite(org)
    later = timezone.now() + timedelta(days=7, seconds=1)

    with time_machine.travel(later, tick=False):
        before_job = api.post(URL, {"token": token, "user_id": "u"}, format="json")
        expire_invitations(now=later)
        after_job = api.post(URL, {"token": token, "user_id": "u"}, format="json")

    assert (before_job.status_code, after_job.status_code) == (410, 410)
    assert after_job.json()["error"]["code"] == "invitation_expired"
    assert not Membership.objects.filter(user_id="u").exists()


@pytest.mark.django_db
def test_it_still_accepts_just_before_expiry(api, org):
    _, token = invite(org)

    with time_machine.travel(timezone.now() + timedelta(days=7, seconds=-5), tick=False):
        response = api.post(URL, {"token": token, "user_id": "u"}, format="json")

    assert response.status_code == 201


@pytest.mark.django_db
def test_a_revoked_invitation_is_410(api, org):
    invitation, token = invite(org)
    revoke_invitation(invitation=invitation, actor=Actor.system("tests"), reason="mistake")

    response = api.post(URL, {"token": token, "user_id": "u"}, format="json")

    assert response.status_code == 410
    assert response.json()["error"]["code"] == "invitation_revoked"


@pytest.mark.django_db
def test_the_seat_limit_holds_if_the_plan_shrank(api, org):
    _, token = invite(org)  # 3 of 3 seats
    Plan.objects.filter(name="free").update(seat_limit=2)

    response = api.post(URL, {"token": token, "user_id": "u"}, format="json")

    assert response.status_code == 402
    assert response.json()["error"]["code"] == "seat_limit_reached"


@pytest.mark.django_db
def test_accepting_for_a_deleted_org_is_404(api, org):
    _, token = invite(org)
    soft_delete_organization(org=org, actor=Actor.system("tests"), reason="test")

    response = api.post(URL, {"token": token, "user_id": "u"}, format="json")

    assert response.json()["error"]["code"] == "org_not_found"


@pytest.mark.django_db
def test_it_rejects_unknown_fields(api, org):
    _, token = invite(org)

    response = api.post(URL, {"token": token, "user_id": "u", "role": "owner"}, format="json")

    assert response.json()["error"]["code"] == "unknown_field"
    assert not Membership.objects.filter(user_id="u").exists()


@pytest.mark.django_db
def test_it_rejects_a_caller_without_a_key(org):
    _, token = invite(org)

    assert APIClient().post(URL, {"token": token, "user_id": "u"}, format="json").status_code == 401


@committing
def test_concurrent_accepts_by_different_users_give_one_membership(api_key):
    org = OrganizationFactory(owner_user_id=OWNER)
    invitation, token = invite(org)

    statuses = run_concurrently(
        lambda i: client_with(api_key)
        .post(URL, {"token": token, "user_id": f"u-{i}"}, format="json")
        .status_code,
        8,
    )

    assert sorted(statuses) == [201] + [409] * 7
    assert Membership.objects.filter(org=org).count() == 2
    invitation.refresh_from_db()
    assert Membership.objects.filter(org=org, user_id=invitation.accepted_by).exists()


@committing
def test_concurrent_accepts_by_one_user_create_one_membership(api_key):
    org = OrganizationFactory(owner_user_id=OWNER)
    _, token = invite(org)

    statuses = run_concurrently(
        lambda _: client_with(api_key)
        .post(URL, {"token": token, "user_id": "u-one"}, format="json")
        .status_code,
        8,
    )

    assert sorted(statuses) == [200] * 7 + [201]
    assert Membership.objects.filter(org=org, user_id="u-one").count() == 1


def test_accepting_writes_the_membership_through_the_membership_write_path(api, org, monkeypatch):
    from orgs.services import memberships

    written = []
    create = memberships._create
    monkeypatch.setattr(
        memberships, "_create", lambda *a, **k: written.append(k["user_id"]) or create(*a, **k)
    )
    _, token = create_invitation(org=org, email="new@x.example", role=Role.MEMBER, actor=Actor.system("t"))

    response = api.post("/api/v1/invitations:accept", {"token": token, "user_id": "u-new"}, format="json")

    assert response.status_code == 201
    assert written == ["u-new"]
