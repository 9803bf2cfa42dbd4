import pytest
from rest_framework.test import APIClient

from tests.conftest import MEMBER

pytestmark = [pytest.mark.django_db, pytest.mark.time_machine("2026-11-20T15:00:00Z", tick=False)]


def url(org):
    return f"/api/v1/orgs/{org.public_id}/usage"


@pytest.fixture
def usage(api, other_api, org, catalog):
    def event(event_id, when, metric="fix_run", quantity="1"):
        return {"event_id": event_id, "org_id": org.public_id, "metric": metric, "quantity": quantity,
                "occurred_at": when, "user_id": MEMBER}  # fmt: skip

    events = [
        event("a", "2026-11-20T09:00:00Z"),
        event("b", "2026-11-20T14:59:00Z", quantity="3"),
        event("c", "2026-11-19T23:59:59Z", metric="token", quantity="1000"),
    ]
    api.post("/api/v1/usage/events", {"events": events}, format="json")
    other_api.post(
        "/api/v1/usage/events",
        {"events": [event("z", "2026-11-20T10:00:00Z", metric="build_minute")]},
        format="json",
    )


def test_it_totals_per_metric_and_per_day_for_the_calling_product(api, org, usage):
    body = api.get(url(org)).json()

    assert (body["from"], body["to"]) == ("2026-10-21T15:00:00Z", "2026-11-20T15:00:00Z")
    assert body["totals"] == [
        {"metric": "fix_run", "quantity": "4.000000", "cost": "10.000000"},
        {"metric": "token", "quantity": "1000.000000", "cost": "0.003000"},
    ]
    assert body["daily"] == [
        {"date": "2026-11-19", "metric": "token", "quantity": "1000.000000", "cost": "0.003000"},
        {"date": "2026-11-20", "metric": "fix_run", "quantity": "4.000000", "cost": "10.000000"},
    ]


def test_it_filters_by_metric_and_a_half_open_period(api, org, usage):
    body = api.get(url(org), {"from": "2026-11-19", "to": "2026-11-20T09:00:00Z"}).json()
    fix_runs = api.get(url(org), {"metric": "fix_run"}).json()

    assert body["totals"] == [{"metric": "token", "quantity": "1000.000000", "cost": "0.003000"}]
    assert [t["metric"] for t in fix_runs["totals"]] == ["fix_run"]


def test_bad_periods_and_parameters_are_400(api, org, usage):
    assert api.get(url(org), {"from": "2026-13-01"}).status_code == 400
    assert api.get(url(org), {"from": "2026-11-02", "to": "2026-11-01"}).status_code == 400
    assert api.get(url(org), {"from": "2024-01-01", "to": "2026-01-01"}).status_code == 400
    assert api.get(url(org), {"since": "2026-11-01"}).json()["error"]["code"] == "unknown_field"


def test_it_answers_404_for_an_unknown_org(api):
    assert api.get("/api/v1/orgs/org_none/usage").status_code == 404


def test_it_rejects_outsider_without_a_key(org):
    assert APIClient().get(url(org)).status_code == 401
