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
    ("/api/v1/event-endpoints", "post"),
    ("/api/v1/event-endpoints", "get"),
    ("/api/v1/event-endpoints/{endpoint_id}", "delete"),
    ("/api/v1/event-endpoints/{endpoint_id}:rotate-secret", "post"),
    ("/api/v1/event-deliveries", "get"),
    ("/api/v1/event-deliveries/{delivery_id}:retry", "post"),
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
        if method == "post" and not path.endswith((":release", ":rotate-secret", ":retry")):  # body `{}`
            assert "requestBody" in operation, path
    assert schema["components"]["securitySchemes"]["ApiKey"]["name"] == "Authorization"


def test_the_events_endpoints_are_described_with_examples_and_every_error_code(client):
    schema = yaml.safe_load(client.get("/api/schema/").content)
    paths = schema["paths"]

    expected_errors = {
        ("/api/v1/event-endpoints", "post"): {"400", "401"},
        ("/api/v1/event-endpoints/{endpoint_id}", "delete"): {"401", "404"},
        ("/api/v1/event-endpoints/{endpoint_id}:rotate-secret", "post"): {"400", "401", "404"},
        ("/api/v1/event-deliveries", "get"): {"400", "401", "404"},
        ("/api/v1/event-deliveries/{delivery_id}:retry", "post"): {"400", "401", "404"},
    }
    for (path, method), statuses in expected_errors.items():
        operation = paths[path][method]
        assert operation["description"] and operation["summary"], path
        assert statuses <= set(operation["responses"]), path
    create = paths["/api/v1/event-endpoints"]["post"]
    assert "examples" in create["requestBody"]["content"]["application/json"]
    assert "examples" in create["responses"]["201"]["content"]["application/json"]
    assert (
        "endpoint_not_found"
        in paths["/api/v1/event-endpoints/{endpoint_id}"]["delete"]["responses"]["404"]["description"]
    )
    assert (
        "delivery_not_found"
        in paths["/api/v1/event-deliveries/{delivery_id}:retry"]["post"]["responses"]["404"]["description"]
    )
    event_types = paths["/api/v1/event-deliveries"]["get"]["parameters"]
    assert any(p["name"] == "event_type" and "spend_cap.near" in p["schema"]["enum"] for p in event_types)


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
