import json
from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from billing.models import CreditBalance, EntryType, LedgerEntry
from billing.services.accounts import soft_delete_organization
from orgs.services.audit import Actor
from tests.concurrency import committing, run_concurrently
from tests.conftest import FIX_RUN, FREE_CREDITS, client_with, set_plan
from tests.factories import OrganizationFactory
from usage.models import UsageEvent

URL = "/api/v1/usage/events"


def event(org, event_id="e-1", **changes):
    return {
        "event_id": event_id,
        "org_id": org.public_id,
        "metric": "fix_run",
        "quantity": "2",
        "occurred_at": timezone.now().isoformat(),
        "user_id": "u-1",
        **changes,
    }


def post(api, *events):
    return api.post(URL, {"events": list(events)}, format="json")


def posted(org):
    return CreditBalance.objects.get(org=org).posted


@pytest.mark.django_db
def test_it_stores_events_with_their_cost_and_debits_them(api, org, catalog, product):
    response = post(api, event(org, "e-1"), event(org, "e-2", quantity="0.4", properties={"repo": "x"}))

    assert (response.status_code, response.json()) == (202, {"accepted": 2, "duplicates": 0})
    stored = {e.event_id: e for e in UsageEvent.objects.all()}
    assert (stored["e-1"].cost, stored["e-2"].cost, stored["e-2"].properties) == (D(5), D(1), {"repo": "x"})
    assert (stored["e-1"].product, stored["e-1"].org, stored["e-1"].user_id) == (product, org, "u-1")
    assert posted(org) == FREE_CREDITS - 6
    debit = LedgerEntry.objects.get(org=org, entry_type=EntryType.DEBIT)
    assert (debit.amount, debit.covered, debit.overage) == (D(-6), D(6), D(0))


@pytest.mark.django_db
def test_one_debit_per_org_per_batch(api, org, other_org, catalog):
    post(api, event(org, "a"), event(other_org, "b"), event(org, "c"))

    debits = LedgerEntry.objects.filter(entry_type=EntryType.DEBIT)
    assert sorted((d.org_id, d.amount) for d in debits) == sorted([(org.pk, D(-10)), (other_org.pk, D(-5))])


@pytest.mark.django_db
def test_duplicates_are_counted_never_stored_or_debited_again(api, org, catalog):
    post(api, event(org, "e-1"))

    response = post(api, event(org, "e-1"), event(org, "e-2"), event(org, "e-2"))

    assert response.json() == {"accepted": 1, "duplicates": 2}
    assert UsageEvent.objects.count() == 2
    assert posted(org) == FREE_CREDITS - 10


@pytest.mark.django_db
def test_a_duplicate_is_never_an_error_even_when_old_or_otherwise_invalid(api, org, catalog):
    post(api, event(org, "e-1"))
    old = (timezone.now() - timedelta(days=40)).isoformat()

    response = post(api, event(org, "e-1", occurred_at=old, quantity="-1", colour="red"))

    assert (response.status_code, response.json()) == (202, {"accepted": 0, "duplicates": 1})


@pytest.mark.django_db
def test_another_product_may_use_the_same_event_id(api, other_api, org, catalog):
    post(api, event(org, "e-1"))

    response = post(other_api, event(org, "e-1", metric="build_minute"))

    assert response.json() == {"accepted": 1, "duplicates": 0}


@pytest.mark.django_db
def test_one_bad_event_rejects_the_batch_and_names_it(api, org, catalog):
    response = post(api, event(org, "ok"), event(org, "bad", quantity="-3"), event(org, "ok-2"))

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["details"]["events"] == [{"index": 1, "fields": {"quantity": ["A number of 0 or more."]}}]
    assert not UsageEvent.objects.exists()
    assert posted(org) == FREE_CREDITS


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"org_id": "org_neverexisted"}, "org_id"),
        ({"org_id": ["org_1"]}, "org_id"),  # not a string (it once made a 500)
        ({"org_id": {"id": 1}}, "org_id"),
        ({"metric": "build_minute"}, "metric"),  # blue's metric, not red's
        ({"quantity": "abc"}, "quantity"),
        ({"quantity": "1.0000001"}, "quantity"),
        ({"quantity": True}, "quantity"),
        ({"quantity": None}, "quantity"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"occurred_at": "2026-11-22T10:00:00"}, "occurred_at"),
        ({"event_id": "x" * 129}, "event_id"),
        ({"event_id": 7}, "event_id"),
        ({"user_id": "u" * 129}, "user_id"),
        ({"properties": [1, 2]}, "properties"),
    ],
)
def test_it_names_each_invalid_field(api, org, catalog, changes, field):
    response = post(api, event(org, **changes))

    assert response.status_code == 400
    assert field in response.json()["error"]["details"]["events"][0]["fields"]
    assert not UsageEvent.objects.exists()


@pytest.mark.django_db
def test_occurred_at_must_be_within_35_days_and_5_minutes_ahead(api, org, catalog):
    now = timezone.now()
    too_late = event(org, "a", occurred_at=(now + timedelta(minutes=6)).isoformat())
    too_old = event(org, "b", occurred_at=(now - timedelta(days=35, minutes=1)).isoformat())
    fine = [
        event(org, "c", occurred_at=(now + timedelta(minutes=4)).isoformat()),
        event(org, "d", occurred_at=(now - timedelta(days=34, hours=23)).isoformat()),
    ]

    bad = post(api, too_late, too_old).json()["error"]["details"]["events"]
    good = post(api, *fine)

    assert [b["index"] for b in bad] == [0, 1]
    assert good.json() == {"accepted": 2, "duplicates": 0}


@pytest.mark.django_db
def test_an_unknown_field_in_an_event_answers_unknown_field(api, org, catalog):
    response = post(api, event(org, colour="red"))

    assert response.json()["error"]["code"] == "unknown_field"
    assert response.json()["error"]["details"]["events"][0]["fields"] == {
        "colour": ["This field is not known."]
    }


@pytest.mark.django_db
def test_json_numbers_are_decimals_never_floats(api, org, catalog):
    raw = f'"event_id": "e", "org_id": "{org.public_id}", "metric": "token", "quantity": 0.1'
    body = f'{{"events": [{{{raw}, "occurred_at": "{timezone.now().isoformat()}"}}]}}'
    api.post(URL, body, content_type="application/json")

    stored = UsageEvent.objects.get()
    assert (stored.quantity, stored.cost) == (D("0.1"), D("0.000000"))  # 0.0000003 → 0.000000 exactly


@pytest.mark.django_db
def test_events_for_a_soft_deleted_org_are_accepted(api, org, catalog):
    soft_delete_organization(org=org, actor=Actor.system("t"), reason="closed")

    assert post(api, event(org)).json() == {"accepted": 1, "duplicates": 0}


@pytest.mark.django_db
def test_overage_is_recorded_on_the_events_credits_did_not_cover(api, org, catalog):
    almost_all = FREE_CREDITS / FIX_RUN - 1  # leaves one run's credits, and the next event needs two
    response = post(api, event(org, "a", quantity=str(almost_all)), event(org, "b", quantity="2"))

    assert response.status_code == 202
    overage = dict(UsageEvent.objects.values_list("event_id", "overage"))
    assert overage == {"a": D(0), "b": D("2.5")}
    assert posted(org) == D("-2.5")
    # The free plan bills no overage: what credits did not cover is owed, not billable.
    assert not UsageEvent.objects.filter(billable_overage__gt=0).exists()


@pytest.mark.django_db
def test_overage_on_an_overage_plan_is_billable(api, org, catalog):
    set_plan(org, "pro")

    post(api, event(org, "a", quantity=str(FREE_CREDITS / FIX_RUN - 1)), event(org, "b", quantity="2"))

    assert dict(UsageEvent.objects.values_list("event_id", "billable_overage")) == {"a": D(0), "b": FIX_RUN}


@pytest.mark.django_db
def test_the_envelope_is_strict(api, org, catalog):
    too_many = api.post(URL, {"events": [event(org, f"e-{i}") for i in range(1001)], "x": 1}, format="json")
    empty = api.post(URL, {"events": []}, format="json")
    extra = api.post(URL, {"events": [event(org)], "batch": "1"}, format="json")
    not_a_list = api.post(URL, {"events": {"a": 1}}, format="json")

    assert (too_many.status_code, too_many.json()["error"]["code"]) == (413, "payload_too_large")
    assert (empty.status_code, empty.json()["error"]["code"]) == (400, "invalid_request")
    assert (extra.status_code, extra.json()["error"]["code"]) == (400, "unknown_field")
    assert not_a_list.status_code == 400
    assert not UsageEvent.objects.exists()


@pytest.mark.django_db
def test_a_body_over_one_mebibyte_is_413(api, org, catalog):
    big = [event(org, f"e-{i}", properties={"pad": "x" * 2000}) for i in range(600)]

    response = api.post(URL, json.dumps({"events": big}), content_type="application/json")

    assert (response.status_code, response.json()["error"]["code"]) == (413, "payload_too_large")


@pytest.mark.django_db
def test_a_thousand_events_fit(api, org, catalog):
    response = post(api, *[event(org, f"e-{i}", quantity="0.001") for i in range(1000)])

    assert response.json() == {"accepted": 1000, "duplicates": 0}
    assert posted(org) == FREE_CREDITS - D("2.5")


@pytest.mark.django_db
def test_it_needs_a_key(org, catalog):
    assert APIClient().post(URL, {"events": [event(org)]}, format="json").status_code == 401


@committing
def test_duplicate_heavy_concurrent_ingestion_debits_each_event_once(api_key, catalog):
    orgs = [OrganizationFactory() for _ in range(3)]

    # 6 clients, each sending 300 events drawn from the same 400 ids across three orgs.
    def batch(client_index):
        events = [
            event(orgs[n % 3], f"e-{n}", quantity="0.1")
            for n in range(client_index * 20, client_index * 20 + 300)
        ]
        return client_with(api_key).post(URL, {"events": events}, format="json").json()

    results = run_concurrently(batch, 6)

    assert sum(r["accepted"] for r in results) == UsageEvent.objects.count() == 400
    assert sum(r["accepted"] + r["duplicates"] for r in results) == 1800
    for org in orgs:
        events = UsageEvent.objects.filter(org=org)
        debited = -sum(e.amount for e in LedgerEntry.objects.filter(org=org, entry_type=EntryType.DEBIT))
        assert debited == sum(e.cost for e in events) == D("0.25") * events.count()
        assert posted(org) == FREE_CREDITS - debited
