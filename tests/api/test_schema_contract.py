"""The served schema tells the whole contract: descriptions, examples, shared error codes, bounds."""

import pytest
import yaml

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(client):
    return yaml.safe_load(client.get("/api/schema/").content)


def operations(schema):
    for path, item in schema["paths"].items():
        if path.startswith("/api/v1/"):
            for method, operation in item.items():
                yield path, method, operation


def test_every_operation_is_described_with_its_shared_error_codes(schema):
    seen = 0
    for path, method, operation in operations(schema):
        seen += 1
        assert operation.get("summary") and len(operation["description"]) > 80, (path, method)
        assert "Input rules" in operation["description"]
        responses = operation["responses"]
        assert "rate_limited" in responses["429"]["description"], path
        assert "invalid_request" in responses["400"]["description"], path
        if "{" in path:
            assert "not_found" in responses["404"]["description"], path
        if method == "post":
            assert "payload_too_large" in responses["413"]["description"], path
    assert seen >= 25


def test_members_are_described_as_pages_and_usage_answers_from(schema):
    members = schema["paths"]["/api/v1/orgs/{org_id}/members"]["get"]
    page = members["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(schema["components"]["schemas"][page]["properties"]) == {"next", "previous", "results"}
    assert {p["name"] for p in members["parameters"]} >= {"cursor", "page_size"}

    usage = schema["paths"]["/api/v1/orgs/{org_id}/usage"]["get"]
    answer = usage["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(schema["components"]["schemas"][answer]["properties"]) == {"from", "to", "totals", "daily"}
    assert {p["name"] for p in usage["parameters"]} >= {"from", "to", "metric"}


def test_fields_carry_realistic_examples_and_amounts_their_bounds(schema):
    body = schema["paths"]["/api/v1/entitlements:check"]["post"]["requestBody"]["content"]["application/json"]
    check = schema["components"]["schemas"][body["schema"]["$ref"].rsplit("/", 1)[1]]["properties"]
    assert check["org_id"]["example"].startswith("org_")
    assert check["metric"]["example"] == "fix_run"
    assert check["quantity"]["pattern"] == r"^\d{1,14}(\.\d{1,6})?$"
    assert "string" not in {str(p.get("example")) for p in check.values()}
