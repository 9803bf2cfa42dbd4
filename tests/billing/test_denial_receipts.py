"""Decision receipts: the denials products received, per (org, product, reason, metric) and minute."""

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from billing.models import DenialReceipt
from billing.services.suspensions import suspend_organization
from orgs.services.audit import Actor
from tests.concurrency import committing, run_concurrently
from tests.conftest import DEFAULT_CLOCK, MEMBER, OUTSIDER, OWNER, client_with
from tests.factories import OrganizationFactory

CHECK = "/api/v1/entitlements:check"
RESERVE = "/api/v1/entitlements:reserve"


def check(api, org, user_id=MEMBER, metric="fix_run"):
    return api.post(CHECK, {"org_id": org.public_id, "user_id": user_id, "metric": metric}, format="json")


def receipts(org):
    return list(
        DenialReceipt.objects.filter(org=org)
        .order_by("minute", "reason", "metric")
        .values_list("product__slug", "reason", "metric", "count", "last_user_id")
    )


@pytest.fixture
def suspended(org):
    suspend_organization(org=org, reason="chargeback", actor=Actor.system("tests"))
    return org


@pytest.mark.django_db
def test_an_allowed_check_writes_no_receipt(api, org, catalog):
    assert check(api, org).status_code == 200

    assert not DenialReceipt.objects.exists()


@pytest.mark.django_db
def test_denials_in_one_minute_add_to_one_receipt_with_the_last_user(api, suspended, catalog):
    assert check(api, suspended).status_code == 402
    check(api, suspended)
    check(api, suspended, user_id="user-owner")

    assert receipts(suspended) == [("red", "billing_suspended", "fix_run", 3, "user-owner")]


@pytest.mark.django_db
def test_another_minute_reason_or_metric_is_another_receipt(api, suspended, catalog):
    check(api, suspended)
    check(api, suspended, metric="token")
    check(api, suspended, user_id=OUTSIDER)
    with time_machine.travel(timezone.now() + timedelta(minutes=1)):
        check(api, suspended)

    assert receipts(suspended) == [
        ("red", "billing_suspended", "fix_run", 1, MEMBER),
        ("red", "billing_suspended", "token", 1, MEMBER),
        ("red", "not_a_member", "fix_run", 1, OUTSIDER),
        ("red", "billing_suspended", "fix_run", 1, MEMBER),
    ]


@pytest.mark.django_db
def test_a_denied_reserve_is_recorded(api, suspended, catalog):
    response = api.post(
        RESERVE,
        {
            "org_id": suspended.public_id,
            "user_id": MEMBER,
            "metric": "fix_run",
            "quantity": "1",
            "idempotency_key": "k1",
        },
        format="json",
    )

    assert response.status_code == 402
    assert receipts(suspended) == [("red", "billing_suspended", "fix_run", 1, MEMBER)]


@pytest.mark.django_db
def test_errors_before_a_decision_write_nothing(api, org, catalog):
    api.post(CHECK, {"org_id": "org_none", "user_id": MEMBER, "metric": "fix_run"}, format="json")
    check(api, org, metric="nope")

    assert not DenialReceipt.objects.exists()


@pytest.mark.django_db
def test_receipts_can_be_turned_off(api, suspended, catalog, settings):
    settings.ENTITLEMENT_RECEIPTS = False

    assert check(api, suspended).status_code == 402
    assert not DenialReceipt.objects.exists()


@pytest.mark.django_db
@pytest.mark.time_machine(DEFAULT_CLOCK, tick=False)  # the page names minutes: pinned at the suite's instant
def test_the_org_page_shows_the_latest_denials_first(api, support, suspended, catalog):
    check(api, suspended)
    with time_machine.travel(timezone.now() + timedelta(minutes=5)):
        check(api, suspended, user_id=OUTSIDER)
        html = support.get(reverse("admin:orgs_organization_change", args=[suspended.pk])).content.decode()

    table = html[html.index('id="org-receipts"') :]
    assert table.index("not_a_member") < table.index("billing_suspended")
    assert "2026-11-18 10:05" in table and OUTSIDER in table


@pytest.mark.django_db
def test_another_orgs_denials_are_not_on_this_page(api, support, org, other_org, catalog):
    suspend_organization(org=other_org, reason="x", actor=Actor.system("tests"))
    check(api, other_org, user_id=OUTSIDER)

    html = support.get(reverse("admin:orgs_organization_change", args=[org.pk])).content.decode()

    assert DenialReceipt.objects.filter(org=other_org).exists()
    assert 'id="org-receipts"' not in html and "None recorded." in html


@committing
def test_concurrent_denials_all_count_in_one_receipt(api_key, catalog):
    org = OrganizationFactory(owner_user_id=OWNER)
    suspend_organization(org=org, reason="chargeback", actor=Actor.system("tests"))

    def deny(index):
        return check(client_with(api_key), org, user_id=OWNER).status_code

    statuses = run_concurrently(deny, 8)

    assert statuses == [402] * 8
    receipt = DenialReceipt.objects.get(org=org)  # one row: the upsert never duplicates the minute
    assert receipt.count == 8


@committing
def test_a_busy_process_writes_its_receipts_together_and_loses_none(api, monkeypatch, catalog):
    from billing.services import receipts as pending_receipts

    monkeypatch.setattr(pending_receipts, "FLUSH_SECONDS", 60)
    monkeypatch.setattr(pending_receipts.pending, "_written_at", 0.0)  # long ago: the first goes at once
    org = OrganizationFactory(owner_user_id=OWNER)
    suspend_organization(org=org, reason="chargeback", actor=Actor.system("tests"))

    for _ in range(3):
        assert check(api, org, user_id=OWNER).status_code == 402

    assert receipts(org) == [("red", "billing_suspended", "fix_run", 1, OWNER)]  # the rest wait
    monkeypatch.setattr(pending_receipts, "BATCH", 2)
    check(api, org, metric="token", user_id=OWNER)  # a second key: two wait, a batch
    assert receipts(org) == [
        ("red", "billing_suspended", "fix_run", 3, OWNER),
        ("red", "billing_suspended", "token", 1, OWNER),
    ]
    check(api, org, user_id=OWNER)
    pending_receipts.pending.flush()  # what atexit does when the process stops
    assert receipts(org)[0] == ("red", "billing_suspended", "fix_run", 4, OWNER)
