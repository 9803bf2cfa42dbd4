import pytest
from rest_framework.test import APIClient

from tests.conftest import MEMBER, OUTSIDER

pytestmark = pytest.mark.django_db


def url(org, user_id):
    return f"/api/v1/orgs/{org.public_id}/members/{user_id}"


def test_it_returns_the_membership(api, org):
    response = api.get(url(org, MEMBER))

    assert response.status_code == 200
    assert response.json() == {
        "org_id": org.public_id,
        "user_id": MEMBER,
        "role": "member",
        "email": None,
        "joined_at": response.json()["joined_at"],
    }


def test_an_outsider_is_not_a_member(api, org, other_org):
    # OUTSIDER owns another org; that makes them nothing here.
    response = api.get(url(org, OUTSIDER))

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_a_member"


def test_it_answers_404_for_an_unknown_org(api):
    assert (
        api.get(url(type("O", (), {"public_id": "org_x"}), MEMBER)).json()["error"]["code"] == "org_not_found"
    )


def test_it_rejects_a_caller_without_a_key(org):
    assert APIClient().get(url(org, MEMBER)).status_code == 401
