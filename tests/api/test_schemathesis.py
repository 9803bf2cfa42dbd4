"""schemathesis against the served schema, through the WSGI app, on a seeded database.

Every operation of /api/v1/ is called with generated requests: valid ones (positive) and ones the
schema forbids (negative). Checks: no 5xx, every answer conforms to its documented schema and
content type, every status code is documented. The seed uses the ids the schema's examples name
(org_2VxQ9mT4kLp8, u_peter, …), so generated requests also reach real objects. Failures are
collected over every operation and reported together.
"""

import os
import time

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from core.api.ratelimits import counter
from core.api.schema import FIELD_EXAMPLES
from orgs.models import Organization, Role
from orgs.services.audit import Actor
from orgs.services.memberships import upsert_membership
from tests.factories import OrganizationFactory

pytestmark = pytest.mark.django_db

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance, content_type_conformance]
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "40"))


@pytest.fixture
def seeded(catalog, api_key, settings):
    settings.API_RATE_LIMITS = "off"
    counter.reset()
    org = OrganizationFactory(owner_user_id=FIELD_EXAMPLES["owner_user_id"])
    Organization.objects.filter(pk=org.pk).update(public_id=FIELD_EXAMPLES["org_id"])
    upsert_membership(org=org, user_id="u_milton", role=Role.MEMBER, actor=Actor.system("tests"))
    # As Django's test client does: the test's transaction must outlive each request.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield api_key
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def exercise(operation, mode: GenerationMode, headers: dict, examples: int) -> tuple[int, list[str]]:
    calls, failures = 0, []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case):
        nonlocal calls
        calls += 1
        response = case.call(headers=headers)
        case.validate_response(response, checks=CHECKS)

    try:
        run()
    except Exception as error:
        failures.append(f"{operation.label} [{mode.value}]: {str(error)[:1500]}")
    return calls, failures


def test_the_api_keeps_its_schema(seeded, capsys):
    from billingsite.wsgi import application

    schema = schemathesis.openapi.from_wsgi("/api/schema/", application).include(path_regex="^/api/v1/")
    headers = {"Authorization": f"Api-Key {seeded}"}
    started, calls, failures, operations = time.perf_counter(), 0, [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            made, failed = exercise(operation, mode, headers, EXAMPLES)
            calls, failures = calls + made, failures + failed
    with capsys.disabled():
        print(
            f"\nschemathesis: {operations} operations, {calls} requests, {len(failures)} failing, "
            f"{time.perf_counter() - started:.0f} s"
        )
    assert operations >= 19
    assert not failures, "\n\n".join(failures)
