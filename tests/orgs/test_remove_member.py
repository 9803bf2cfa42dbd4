import pytest
from rest_framework.test import APIClient

from orgs.models import AuditEntry, Membership, Role
from orgs.services.audit import Actor
from orgs.services.memberships import upsert_membership
from tests.concurrency import committing, run_concurrently
from tests.conftest import MEMBER, OUTSIDER, OWNER, client_with
from tests.factories import OrganizationFactory


def url(org, user_id):
    return f"/api/v1/orgs/{org.public_id}/members/{user_id}"


@pytest.mark.django_db
def test_it_removes_a_member(api, org):
    response = api.delete(url(org, MEMBER))

    assert response.status_code == 204
    assert not Membership.objects.filter(org=org, user_id=MEMBER).exists()
    entry = AuditEntry.objects.get(org=org, action="membership.removed")
    assert entry.before == {"user_id": MEMBER, "role": "member", "email": ""}


@pytest.mark.django_db
def test_removing_twice_answers_not_a_member(api, org):
    api.delete(url(org, MEMBER))

    response = api.delete(url(org, MEMBER))

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_a_member"


@pytest.mark.django_db
def test_it_refuses_to_remove_the_last_owner(api, org):
    response = api.delete(url(org, OWNER))

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "last_owner"
    assert Membership.objects.filter(org=org, user_id=OWNER).exists()


@pytest.mark.django_db
def test_it_cannot_remove_an_outsider(api, org, other_org):
    response = api.delete(url(org, OUTSIDER))

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_a_member"
    assert Membership.objects.filter(org=other_org, user_id=OUTSIDER).exists()


@pytest.mark.django_db
def test_it_rejects_a_caller_without_a_key(org):
    assert APIClient().delete(url(org, MEMBER)).status_code == 401
    assert Membership.objects.filter(org=org, user_id=MEMBER).exists()


@committing
def test_concurrent_removals_of_two_owners_keep_one(api_key):
    for _ in range(5):
        org = OrganizationFactory(owner_user_id="owner-a")
        upsert_membership(org=org, user_id="owner-b", role=Role.OWNER, actor=Actor.system("tests"))

        statuses = run_concurrently(
            lambda index, org=org: client_with(api_key).delete(url(org, f"owner-{'ab'[index]}")).status_code,
            2,
        )

        assert sorted(statuses) == [204, 409]
        assert Membership.objects.filter(org=org, role=Role.OWNER).count() == 1
