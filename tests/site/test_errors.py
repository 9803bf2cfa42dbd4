import pytest

from orgs.models import AuditEntry, Membership

pytestmark = pytest.mark.django_db


def test_an_unknown_api_path_answers_in_the_error_shape(api):
    response = api.get("/api/v1/nothing-here")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_malformed_json_is_invalid_request(api, org):
    response = api.post(
        f"/api/v1/orgs/{org.public_id}/members:upsert", data='{"user_id": ', content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


def test_nan_is_not_a_number_here(api, org):
    response = api.post("/api/v1/orgs", data='{"name": NaN}', content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


def test_a_body_over_one_mebibyte_is_413_and_writes_nothing(api, org):
    body = '{"user_id": "u", "role": "member", "email": "' + "x" * (1024 * 1024) + '"}'

    response = api.post(
        f"/api/v1/orgs/{org.public_id}/members:upsert", data=body, content_type="application/json"
    )

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert not Membership.objects.filter(user_id="u").exists()


def test_413_comes_before_unknown_field(api, org):
    body = '{"bogus": "' + "x" * (1024 * 1024) + '"}'

    response = api.post(
        f"/api/v1/orgs/{org.public_id}/members:upsert", data=body, content_type="application/json"
    )

    assert response.status_code == 413


def test_a_form_body_is_415(api, org):
    response = api.post(f"/api/v1/orgs/{org.public_id}/members:upsert", {"user_id": "u", "role": "member"})

    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


def test_a_wrong_method_is_405(api, org):
    response = api.put(f"/api/v1/orgs/{org.public_id}/members", {}, format="json")

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_the_request_id_reaches_the_response_and_the_audit(api, org):
    response = api.post(
        f"/api/v1/orgs/{org.public_id}/members:upsert",
        {"user_id": "u-new", "role": "member"},
        format="json",
        HTTP_X_REQUEST_ID="req-123",
    )

    assert response["X-Request-ID"] == "req-123"
    assert AuditEntry.objects.get(action="membership.created", after__user_id="u-new").request_id == "req-123"


def test_an_unsafe_request_id_is_replaced(api):
    response = api.get("/api/v1/orgs/org_x", HTTP_X_REQUEST_ID="<script>")

    assert response["X-Request-ID"] != "<script>" and len(response["X-Request-ID"]) == 32
