"""Hostile input against every endpoint: always a 4xx in the error shape, and nothing changed.

The endpoints are walked from the URL conf (and their body fields read from the served schema),
so a new endpoint is covered without editing this module.
"""

import json
import re
from decimal import Decimal

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.generators import SchemaGenerator

from billing.models import CreditBalance, Hold, LedgerEntry
from billing.services.holds import reserve_credits
from orgs.models import AuditEntry, EventEndpoint, Invitation, Membership, Organization
from orgs.services.audit import Actor
from orgs.services.event_endpoints import create_endpoint
from tests.conftest import MEMBER, OWNER
from usage.models import UsageEvent

pytestmark = pytest.mark.django_db

API_PREFIX = "api/v1/"
WRITE_METHODS = ("post", "put", "patch")


def _routes(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _routes(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry.callback


def api_operations() -> list[tuple[str, str]]:
    """(route, method) for every API endpoint in the URL conf, e.g. ("api/v1/orgs/<str:org_id>", "get")."""
    operations = []
    for route, callback in _routes(get_resolver().url_patterns):
        view = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
        if not route.startswith(API_PREFIX) or view is None:
            continue
        for method in ("get", "post", "put", "patch", "delete"):
            if hasattr(view, method):
                operations.append((route, method))
    return operations


OPERATIONS = api_operations()
WRITES = [op for op in OPERATIONS if op[1] in WRITE_METHODS]
WITH_PATH_IDS = [op for op in OPERATIONS if "<" in op[0]]


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        return SchemaGenerator().get_schema(request=None, public=True)


def body_fields(schema, route: str, method: str) -> dict[str, dict]:
    """The request body's top-level properties for this operation, as the schema states them."""
    path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
    operation = schema["paths"].get(path, {}).get(method, {})
    content = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    ref = content.get("schema", {}).get("$ref", "")
    component = schema["components"]["schemas"].get(ref.rsplit("/", 1)[-1], {})
    return component.get("properties", {})


@pytest.fixture
def world(org, catalog, product, api):
    """Something for every path id to name: an org with members, an active hold, an endpoint."""
    hold = reserve_credits(
        org_id=org.public_id,
        product=product,
        user_id=MEMBER,
        metric="fix_run",
        quantity=Decimal(2),
        idempotency_key="held",
        ttl_seconds=600,
    )[0]
    endpoint = create_endpoint(
        product=product,
        url="https://red.example/hooks",
        event_types=["member.upserted"],
        actor=Actor.for_product(product),
    )
    return {
        "org_id": org.public_id,
        "user_id": MEMBER,
        "hold_id": hold.public_id,
        "endpoint_id": endpoint.public_id,
        "delivery_id": "dlv_missing",
    }


def concrete(route: str, ids: dict[str, str], override: dict[str, str] | None = None) -> str:
    values = {**ids, **(override or {})}
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m.group(1)], route)


def state():
    """What no rejected request may change."""
    return {
        "orgs": sorted(Organization.objects.values_list("public_id", "deleted_at")),
        "members": sorted(Membership.objects.values_list("org_id", "user_id", "role")),
        "invitations": Invitation.objects.count(),
        "balances": sorted(CreditBalance.objects.values_list("org_id", "posted", "billed_debt")),
        "ledger": LedgerEntry.objects.count(),
        "holds": sorted(Hold.objects.values_list("public_id", "state", "idempotency_key")),
        "usage": UsageEvent.objects.count(),
        "endpoints": sorted(EventEndpoint.objects.values_list("public_id", "secret", "disabled_at")),
        "audit": AuditEntry.objects.count(),
    }


def assert_rejected(response, status=None):
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    if status is not None:
        assert response.status_code == status, response.content[:300]
    error = response.json()["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str)
    assert isinstance(error["details"], dict)
    return error


def send(api, method, path, body: str | bytes):
    return getattr(api, method)(path, data=body, content_type="application/json")


DEEP = "[" * 100_000 + "]" * 100_000
HOSTILE_BODIES = {
    "deep array": DEEP,
    "deep object": '{"a":' * 50_000 + "1" + "}" * 50_000,
    "33 levels": '{"a":' * 33 + "1" + "}" * 33,
    "surrogate key": '{"\\ud800": 1}',
    "surrogate value": '{"org_id": "\\udfff"}',
    "NUL value": '{"org_id": "a\\u0000b", "user_id": "\\u0000"}',
    "NUL deep in a value": '{"events": [{"properties": {"k": "\\u0000"}}]}',
    "raw bad UTF-8": b'{"org_id": "\xed\xa0\x80\xff"}',
    "huge integer": '{"quantity": ' + "9" * 5000 + "}",
    "huge exponent": '{"quantity": 1e999999999, "amount": 1e999999999}',
    "NaN": '{"quantity": NaN}',
    "not an object": '"just a string"',
    "broken": '{"a": ',
}


@pytest.mark.parametrize("kind", HOSTILE_BODIES)
def test_hostile_bodies_are_a_4xx_on_every_endpoint_and_change_nothing(api, world, kind):
    before = state()
    for route, method in WRITES:
        response = send(api, method, concrete(route, world), HOSTILE_BODIES[kind])
        error = assert_rejected(response)
        assert "\\ud800" not in response.content.decode() or kind != "surrogate key", error
    assert state() == before


def test_deep_and_bad_text_name_the_rule_without_echoing_it(api, world):
    deep = send(api, "post", "/api/v1/entitlements:check", DEEP)
    nul = send(api, "post", "/api/v1/entitlements:check", '{"org_id": "a\\u0000b"}')
    key = send(api, "post", "/api/v1/entitlements:check", '{"\\ud800x": "1"}')

    assert assert_rejected(deep, 400)["code"] == "invalid_request"
    assert "32" in deep.json()["error"]["message"]
    assert assert_rejected(nul, 400)["details"]["fields"] == {
        "org_id": ["A string may not hold NUL or an unpaired surrogate."]
    }
    assert assert_rejected(key, 400)["code"] == "invalid_request"
    assert b"\x00" not in nul.content and "\ud800" not in key.content.decode()


def test_a_ten_megabyte_body_is_413_everywhere(api, world):
    body = json.dumps({"pad": "x" * 10_000_000})
    before = state()
    for route, method in WRITES:
        error = assert_rejected(send(api, method, concrete(route, world), body), 413)
        assert error["code"] == "payload_too_large"
    assert state() == before


HOSTILE_IDS = {
    "NUL": "%00",
    "NUL inside": "org%00x",
    "control": "a%01b",
    "surrogate": "%ED%A0%80",
    "bad UTF-8": "%FF",
}


@pytest.mark.parametrize("kind", HOSTILE_IDS)
def test_a_bad_character_in_a_path_id_is_404_in_the_error_shape(api, world, kind):
    before = state()
    for route, method in WITH_PATH_IDS:
        for name in re.findall(r"<(?:\w+:)?(\w+)>", route):
            path = concrete(route, world, {name: HOSTILE_IDS[kind]})
            response = send(api, method, path, "{}") if method != "get" else api.get(path)
            assert assert_rejected(response, 404)["code"] == "not_found"
    assert state() == before


def test_a_bad_character_in_a_query_is_400(api, world):
    for route, method in OPERATIONS:
        if method != "get":
            continue
        path = concrete(route, world)
        for query in ("metric=%00", "from=a%0Ab", "x%00=1"):
            assert assert_rejected(api.get(f"{path}?{query}"), 400)["code"] == "invalid_request"


WRONG_TYPES = {"object": {}, "array": ["a"], "number": 7, "boolean": True}


@pytest.mark.parametrize("kind", WRONG_TYPES)
def test_a_string_field_takes_a_json_string_only_everywhere(api, world, schema, kind):
    """One rule for text: every string field of every body refuses objects, arrays, numbers."""
    before = state()
    checked = 0
    for route, method in WRITES:
        for name, spec in body_fields(schema, route, method).items():
            # Amounts take a number or a decimal string (the API's rule for money), so not here.
            amount = spec.get("format") == "decimal" or name in ("quantity", "amount")
            if spec.get("type") != "string" or spec.get("readOnly") or amount:
                continue
            body = {name: WRONG_TYPES[kind]}
            error = assert_rejected(send(api, method, concrete(route, world), json.dumps(body)), 400)
            assert name in json.dumps(error["details"]), (route, name, error)
            checked += 1
    assert checked > 20
    assert state() == before


@pytest.mark.parametrize("kind", WRONG_TYPES)
def test_ids_of_the_wrong_type_in_a_usage_batch_are_400(api, world, kind):
    event = {
        "event_id": WRONG_TYPES[kind],
        "org_id": WRONG_TYPES[kind],
        "metric": "fix_run",
        "quantity": "1",
        "occurred_at": "2026-11-18T09:00:00Z",
    }
    before = state()
    response = api.post("/api/v1/usage/events", {"events": [event]}, format="json")
    assert assert_rejected(response, 400)["code"] == "invalid_request"
    assert state() == before


def test_usage_bounds_out_of_the_calendar_are_400(api, world):
    url = f"/api/v1/orgs/{world['org_id']}/usage"
    for query in ("from=9999-12-31T23:59:59-23:59", "to=0001-01-01T00:00:00%2B23:59", "to=0001-01-01"):
        assert assert_rejected(api.get(f"{url}?{query}"), 400)["code"] == "invalid_request"


def event(n: int, quantity: str, org_id: str) -> dict:
    return {
        "event_id": f"e-{n}",
        "org_id": org_id,
        "metric": "fix_run",
        "quantity": quantity,
        "occurred_at": "2026-11-18T09:00:00Z",
    }


def test_costs_beyond_the_stored_range_are_400_naming_the_bound(api, world):
    """fix_run costs 2.5 credits: 99,999,999,999,999 runs cost more than NUMERIC(20, 6) holds."""
    org_id, before = world["org_id"], state()
    one = api.post("/api/v1/usage/events", {"events": [event(0, "99999999999999", org_id)]}, format="json")
    batch = [event(n, "9000000000000", org_id) for n in range(1000)]  # 2.25e16 credits in all
    many = api.post("/api/v1/usage/events", {"events": batch}, format="json")
    check = {"org_id": org_id, "user_id": OWNER, "metric": "fix_run", "quantity": "99999999999999"}
    checked = api.post("/api/v1/entitlements:check", check, format="json")
    reserved = api.post("/api/v1/entitlements:reserve", {**check, "idempotency_key": "big"}, format="json")
    committed = api.post(
        f"/api/v1/holds/{world['hold_id']}:commit",
        {"event_id": "c-1", "quantity": "99999999999999.999999"},
        format="json",
    )
    for response in (one, many, checked, reserved, committed):
        error = assert_rejected(response, 400)
        assert error["code"] == "invalid_request"
        assert "10^14" in json.dumps(error), error
    assert state() == before


def test_releasing_a_hold_reads_its_body_by_the_same_rules(api, world):
    url, before = f"/api/v1/holds/{world['hold_id']}:release", state()

    assert assert_rejected(api.post(url, {"force": True}, format="json"), 400)["code"] == "unknown_field"
    assert assert_rejected(send(api, "post", url, '{"a": '), 400)["code"] == "invalid_request"
    assert state() == before
    assert api.post(url, {}, format="json").status_code == 200


def test_a_signed_webhook_too_deep_or_with_nul_is_400_and_stores_nothing(post_webhook, stripe_standin):
    from billing.models import ReceivedStripeEvent

    deep = {"id": "evt_deep", "object": "event", "type": "invoice.paid", "data": {"object": {}}}
    node = deep["data"]["object"]
    for _ in range(40):
        node["x"] = {}
        node = node["x"]
    nul = {"id": "evt_\u0000", "object": "event", "type": "invoice.paid", "data": {"object": {}}}

    assert post_webhook(deep).status_code == 400
    assert post_webhook(nul).status_code == 400
    assert not ReceivedStripeEvent.objects.exists()


def test_an_unsigned_webhook_with_nul_is_400(client, djstripe_webhook_endpoint):
    url = f"/stripe/webhook/{djstripe_webhook_endpoint.djstripe_uuid}/"
    response = client.post(url, data='{"id": "\\u0000\x00"}', content_type="application/json")
    assert response.status_code == 400
