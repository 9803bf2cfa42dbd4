from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from billing.models import Plan
from orgs.models import Membership, ProductAPIKey
from orgs.services.audit import Actor
from orgs.services.products import revoke_api_key
from tests.conftest import client_with

pytestmark = pytest.mark.django_db

BODY = {"user_id": "u-new", "role": "member"}


def url(org):
    return f"/api/v1/orgs/{org.public_id}/members:upsert"


def assert_unauthenticated(response):
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
    assert response["WWW-Authenticate"] == "Api-Key"
    assert not Membership.objects.filter(user_id="u-new").exists()


def test_a_missing_key_is_401(org):
    assert_unauthenticated(APIClient().post(url(org), BODY, format="json"))


@pytest.mark.parametrize("header", ["Bearer abc", "Api-Key", "Api-Key ", "api-key abc.def", "Token x"])
def test_a_malformed_header_is_401(org, header):
    assert_unauthenticated(APIClient().post(url(org), BODY, format="json", HTTP_AUTHORIZATION=header))


def test_an_unknown_key_is_401(org, api_key):
    prefix, _, secret = api_key.partition(".")

    assert_unauthenticated(client_with(f"{prefix}.{secret[::-1]}").post(url(org), BODY, format="json"))
    assert_unauthenticated(client_with("nopenope.secret").post(url(org), BODY, format="json"))


def test_a_revoked_key_is_401_at_once(org, api_key):
    assert (
        client_with(api_key).post(url(org), {"user_id": "u-0", "role": "member"}, format="json").status_code
        == 201
    )

    revoke_api_key(api_key=ProductAPIKey.objects.get(), actor=Actor.system("tests"), reason="leaked")

    assert_unauthenticated(client_with(api_key).post(url(org), BODY, format="json"))


def test_an_expired_key_is_401(org, api_key):
    ProductAPIKey.objects.update(expiry_date=timezone.now() - timedelta(seconds=1))

    assert_unauthenticated(client_with(api_key).post(url(org), BODY, format="json"))


def test_the_key_names_the_product(org, api, other_api, product, other_product):
    Plan.objects.filter(name="free").update(seat_limit=None)
    api.post(url(org), {"user_id": "u-red", "role": "member"}, format="json")
    other_api.post(url(org), {"user_id": "u-blue", "role": "member"}, format="json")

    assert Membership.objects.get(user_id="u-red").product == product
    assert Membership.objects.get(user_id="u-blue").product == other_product


def test_keys_are_stored_hashed(api_key):
    row = ProductAPIKey.objects.values().get()

    secret = api_key.partition(".")[2]
    assert not any(secret in str(value) for value in row.values())
    assert row["hashed_key"].startswith("sha512$$")


def test_401_comes_before_413(org):
    huge = {"user_id": "u", "role": "member", "email": "x" * (2 * 1024 * 1024)}

    response = APIClient().post(url(org), huge, format="json")

    assert response.status_code == 401


def test_401_comes_before_unknown_field(org):
    response = APIClient().post(url(org), {**BODY, "bogus": 1}, format="json")

    assert response.status_code == 401


def test_ping_names_the_keys_product(api, other_api):
    assert api.get("/api/v1/ping").json() == {"product": "red"}
    assert other_api.get("/api/v1/ping").json() == {"product": "blue"}
    assert APIClient().get("/api/v1/ping").status_code == 401
