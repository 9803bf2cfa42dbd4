import pytest
import yaml

pytestmark = pytest.mark.django_db

ENDPOINTS = {
    ("/api/v1/orgs", "post"),
    ("/api/v1/orgs/{org_id}", "get"),
    ("/api/v1/orgs/{org_id}/members:upsert", "post"),
    ("/api/v1/orgs/{org_id}/members", "get"),
    ("/api/v1/orgs/{org_id}/members/{user_id}", "get"),
    ("/api/v1/orgs/{org_id}/members/{user_id}", "delete"),
    ("/api/v1/orgs/{org_id}/invitations", "post"),
    ("/api/v1/invitations:accept", "post"),
    ("/api/v1/entitlements:check", "post"),
    ("/api/v1/entitlements:reserve", "post"),
    ("/api/v1/holds/{hold_id}:commit", "post"),
    ("/api/v1/holds/{hold_id}:release", "post"),
    ("/api/v1/usage/events", "post"),
    ("/api/v1/orgs/{org_id}/usage", "get"),
    ("/api/v1/orgs/{org_id}/credits", "get"),
    ("/api/v1/orgs/{org_id}/credits/grants", "post"),
    ("/api/v1/credit-policy", "get"),
    ("/api/v1/orgs/{org_id}/checkout-sessions", "post"),
    ("/api/v1/ping", "get"),
}


def test_the_schema_describes_every_endpoint_with_bodies(client):
    response = client.get("/api/schema/")

    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    described = {(path, method) for path, item in schema["paths"].items() for method in item}
    assert described >= ENDPOINTS
    for path, method in ENDPOINTS:
        operation = schema["paths"][path][method]
        assert operation["security"] == [{"ApiKey": []}]
        assert "401" in operation["responses"]
        if method == "post" and not path.endswith(":release"):
            assert "requestBody" in operation, path
    assert schema["components"]["securitySchemes"]["ApiKey"]["name"] == "Authorization"


def test_the_docs_work_without_internet(client):
    page = client.get("/api/docs/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn." not in html and "unpkg" not in html
    asset = client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert asset.status_code == 200


def test_a_lean_body_is_described_by_the_readers_that_read_it():
    from billing.api.entitlements import (
        CHECK_FIELDS,
        RESERVE_FIELDS,
        EntitlementCheckView,
        EntitlementReserveView,
    )
    from core.api.parsing import schema_for, text

    for view, fields in ((EntitlementCheckView, CHECK_FIELDS), (EntitlementReserveView, RESERVE_FIELDS)):
        described = view.CheckSerializer if view is EntitlementCheckView else view.ReserveSerializer
        assert list(described().fields) == list(fields)
    assert schema_for("Probe", {"name": text(5)})().fields["name"].max_length == 5
