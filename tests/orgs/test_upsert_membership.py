import pytest
from rest_framework.test import APIClient

from orgs.models import AuditEntry, Invitation, Membership, Role
from orgs.services.audit import Actor
from orgs.services.invitations import create_invitation
from orgs.services.memberships import upsert_membership
from tests.concurrency import committing, run_concurrently
from tests.conftest import FREE_SEATS, MEMBER, OUTSIDER, OWNER, client_with, fill_seats
from tests.factories import OrganizationFactory


def url(org):
    return f"/api/v1/orgs/{org.public_id}/members:upsert"


@pytest.mark.django_db
def test_it_creates_a_membership(api, org, product):
    response = api.post(
        url(org), {"user_id": "u-new", "role": "admin", "email": "new@x.example"}, format="json"
    )

    assert response.status_code == 201
    body = response.json()
    assert body == {
        "org_id": org.public_id,
        "user_id": "u-new",
        "role": "admin",
        "email": "new@x.example",
        "created": True,
        "joined_at": body["joined_at"],
    }
    membership = Membership.objects.get(org=org, user_id="u-new")
    assert membership.product == product
    entry = AuditEntry.objects.get(org=org, action="membership.created", after__user_id="u-new")
    assert (entry.actor_type, entry.actor_product) == ("product", product)


@pytest.mark.django_db
def test_it_is_idempotent(api, org):
    first = api.post(url(org), {"user_id": "u-new", "role": "member"}, format="json")
    entries = AuditEntry.objects.count()

    second = api.post(url(org), {"user_id": "u-new", "role": "member"}, format="json")

    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["created"] is False
    assert second.json()["joined_at"] == first.json()["joined_at"]
    assert Membership.objects.filter(org=org, user_id="u-new").count() == 1
    assert AuditEntry.objects.count() == entries  # nothing changed, nothing recorded


@pytest.mark.django_db
def test_it_changes_the_role_and_records_before_and_after(api, org):
    response = api.post(url(org), {"user_id": MEMBER, "role": "billing"}, format="json")

    assert response.status_code == 200
    assert response.json()["role"] == "billing"
    entry = AuditEntry.objects.get(org=org, action="membership.updated")
    assert (entry.before["role"], entry.after["role"]) == ("member", "billing")


@pytest.mark.django_db
def test_it_keeps_the_email_when_none_is_given(api, org):
    api.post(url(org), {"user_id": "u-new", "role": "member", "email": "keep@x.example"}, format="json")

    response = api.post(url(org), {"user_id": "u-new", "role": "admin"}, format="json")

    assert response.json()["email"] == "keep@x.example"


@pytest.mark.django_db
def test_it_refuses_a_member_beyond_the_seat_limit(api, org):
    fill_seats(org, leave=1)
    assert api.post(url(org), {"user_id": "u-last", "role": "member"}, format="json").status_code == 201

    response = api.post(url(org), {"user_id": "one-too-many", "role": "member"}, format="json")

    assert response.status_code == 402
    assert response.json()["error"]["code"] == "seat_limit_reached"
    assert response.json()["error"]["details"] == {"seat_limit": FREE_SEATS, "seats_in_use": FREE_SEATS}
    assert not Membership.objects.filter(user_id="one-too-many").exists()


@pytest.mark.django_db
def test_a_pending_invitation_holds_a_seat(api, org):
    fill_seats(org, leave=1)
    create_invitation(org=org, email="pending@x.example", role=Role.MEMBER, actor=Actor.system("tests"))

    response = api.post(url(org), {"user_id": "u-3", "role": "member"}, format="json")

    assert response.status_code == 402


@pytest.mark.django_db
def test_updating_an_existing_member_needs_no_free_seat(api, org):
    fill_seats(org, leave=1)
    api.post(url(org), {"user_id": "u-3", "role": "member"}, format="json")  # the org is now full

    response = api.post(url(org), {"user_id": "u-3", "role": "admin"}, format="json")

    assert response.status_code == 200


@pytest.mark.django_db
def test_it_refuses_to_demote_the_last_owner(api, org):
    response = api.post(url(org), {"user_id": OWNER, "role": "admin"}, format="json")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "last_owner"
    assert Membership.objects.get(org=org, user_id=OWNER).role == Role.OWNER


@pytest.mark.django_db
def test_it_demotes_an_owner_when_another_remains(api, org):
    api.post(url(org), {"user_id": MEMBER, "role": "owner"}, format="json")

    response = api.post(url(org), {"user_id": OWNER, "role": "member"}, format="json")

    assert response.status_code == 200
    assert Membership.objects.get(org=org, user_id=OWNER).role == Role.MEMBER


@pytest.mark.django_db
def test_it_rejects_an_unknown_field_and_writes_nothing(api, org):
    before = AuditEntry.objects.count()

    response = api.post(url(org), {"user_id": "u-new", "role": "member", "name": "Ann"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_field"
    assert response.json()["error"]["details"]["fields"] == {"name": ["This field is not known."]}
    assert not Membership.objects.filter(user_id="u-new").exists()
    assert AuditEntry.objects.count() == before


@pytest.mark.django_db
def test_unknown_field_comes_before_invalid_request(api, org):
    response = api.post(url(org), {"role": "emperor", "nickname": "x"}, format="json")

    assert response.json()["error"]["code"] == "unknown_field"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"role": "member"}, "user_id"),
        ({"user_id": "u", "role": "emperor"}, "role"),
        ({"user_id": "u" * 129, "role": "member"}, "user_id"),
        ({"user_id": "", "role": "member"}, "user_id"),
        ({"user_id": "u", "role": "member", "email": "nope"}, "email"),
        ({"user_id": 12, "role": "member", "email": None}, "email"),
    ],
)
def test_it_rejects_invalid_fields(api, org, body, field):
    response = api.post(url(org), body, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert field in response.json()["error"]["details"]["fields"]
    assert Membership.objects.filter(org=org).count() == 2


@pytest.mark.django_db
def test_it_rejects_a_body_that_is_not_an_object(api, org):
    response = api.post(url(org), [{"user_id": "u", "role": "member"}], format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


@pytest.mark.django_db
def test_it_answers_404_for_an_unknown_or_deleted_org(api, org):
    from billing.services.accounts import soft_delete_organization

    assert (
        api.post(
            "/api/v1/orgs/org_nope/members:upsert", {"user_id": "u", "role": "member"}, format="json"
        ).json()["error"]["code"]
        == "org_not_found"
    )
    soft_delete_organization(org=org, actor=Actor.system("tests"), reason="test")

    response = api.post(url(org), {"user_id": "u", "role": "member"}, format="json")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "org_not_found"


@pytest.mark.django_db
def test_it_rejects_outsider_without_a_key(org):
    response = APIClient().post(url(org), {"user_id": OUTSIDER, "role": "owner"}, format="json")

    assert response.status_code == 401
    assert not Membership.objects.filter(org=org, user_id=OUTSIDER).exists()


@pytest.mark.django_db
def test_it_keeps_orgs_apart(api, org, other_org):
    api.post(url(org), {"user_id": OUTSIDER, "role": "member"}, format="json")

    assert Membership.objects.get(org=other_org, user_id=OUTSIDER).role == Role.OWNER
    assert Membership.objects.get(org=org, user_id=OUTSIDER).role == Role.MEMBER


# --- Concurrency: real clients, each on its own PostgreSQL connection --------------------------


@committing
def test_sixteen_concurrent_upserts_of_one_new_member_create_it_once(api_key):
    org = OrganizationFactory(owner_user_id=OWNER)
    upsert_membership(org=org, user_id="pad", role=Role.MEMBER, actor=Actor.system("tests"))
    from billing.models import Plan

    Plan.objects.filter(name="free").update(seat_limit=100)

    def upsert(_):
        body = {"user_id": "u-race", "role": "member"}
        return client_with(api_key).post(url(org), body, format="json").status_code

    statuses = run_concurrently(upsert, 16)

    assert sorted(statuses) == [200] * 15 + [201]
    assert Membership.objects.filter(org=org, user_id="u-race").count() == 1
    assert (
        AuditEntry.objects.filter(org=org, action="membership.created", after__user_id="u-race").count() == 1
    )


@committing
def test_concurrent_adds_never_exceed_the_seat_limit(api_key):
    org = OrganizationFactory(owner_user_id=OWNER)  # one of the free plan's seats used

    def upsert(index):
        body = {"user_id": f"u-{index}", "role": "member"}
        return client_with(api_key).post(url(org), body, format="json").status_code

    statuses = run_concurrently(upsert, 8)

    assert sorted(statuses) == [201] * (FREE_SEATS - 1) + [402] * (8 - FREE_SEATS + 1)
    assert Membership.objects.filter(org=org).count() == FREE_SEATS


@committing
def test_concurrent_demotions_never_leave_an_org_without_an_owner(api_key):
    for round_ in range(5):
        org = OrganizationFactory(owner_user_id="owner-a")
        upsert_membership(org=org, user_id="owner-b", role=Role.OWNER, actor=Actor.system("tests"))

        def demote(index, org=org):
            body = {"user_id": ["owner-a", "owner-b"][index], "role": "member"}
            return client_with(api_key).post(url(org), body, format="json").status_code

        statuses = run_concurrently(demote, 2)

        assert sorted(statuses) == [200, 409], f"round {round_}"
        assert Membership.objects.filter(org=org, role=Role.OWNER).count() == 1


@pytest.mark.django_db
def test_an_invitation_for_another_org_does_not_use_this_orgs_seats(api, org, other_org):
    for email in ("a@x.example", "b@x.example"):
        create_invitation(org=other_org, email=email, role=Role.MEMBER, actor=Actor.system("tests"))

    response = api.post(url(org), {"user_id": "u-3", "role": "member"}, format="json")

    assert response.status_code == 201
    assert Invitation.objects.filter(org=other_org).count() == 2
