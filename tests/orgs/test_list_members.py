import pytest
from rest_framework.test import APIClient

from tests.conftest import MEMBER, OUTSIDER, OWNER

pytestmark = pytest.mark.django_db


def url(org):
    return f"/api/v1/orgs/{org.public_id}/members"


def test_it_lists_the_orgs_members(api, org, other_org):
    response = api.get(url(org))

    assert response.status_code == 200
    results = response.json()["results"]
    assert [m["user_id"] for m in results] == [OWNER, MEMBER]
    assert set(results[0]) == {"org_id", "user_id", "role", "email", "joined_at"}
    assert OUTSIDER not in {m["user_id"] for m in results}


def test_it_paginates(api, org):
    first = api.get(url(org), {"page_size": 1}).json()

    assert [m["user_id"] for m in first["results"]] == [OWNER]
    second = api.get(first["next"]).json()
    assert [m["user_id"] for m in second["results"]] == [MEMBER]
    assert second["next"] is None


def test_it_answers_404_for_an_unknown_org(api):
    response = api.get("/api/v1/orgs/org_unknown/members")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "org_not_found"


def test_it_rejects_outsider_without_a_key(org):
    response = APIClient().get(url(org))

    assert response.status_code == 401
    assert "results" not in response.json()
