import json
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command

from billing.models import BillingAccount, PaymentStatus, SuspensionSource
from billing.services.accounts import soft_delete_organization
from billing.services.suspensions import (
    OVERDUE_GRACE,
    lift_suspension,
    reconcile_suspensions,
    suspend_organization,
)
from orgs.models import AuditEntry
from orgs.services.audit import Actor
from tests.concurrency import committing, run_concurrently
from tests.conftest import MEMBER
from tests.factories import OrganizationFactory

OVERDUE = datetime(2026, 11, 1, 12, tzinfo=UTC)
STAFF = Actor.system("tests")


def overdue(org, *, since=OVERDUE, paid=None):
    BillingAccount.objects.filter(org=org).update(
        payment_status=PaymentStatus.PAST_DUE, overdue_since=since, first_paid_at=paid
    )


def account(org):
    return BillingAccount.objects.get(org=org)


@pytest.mark.django_db
def test_it_suspends_at_exactly_the_grace_and_not_before(org):
    overdue(org)

    assert reconcile_suspensions(now=OVERDUE + OVERDUE_GRACE - timedelta(seconds=1)) == {
        "suspended": 0,
        "lifted": 0,
    }
    assert reconcile_suspensions(now=OVERDUE + OVERDUE_GRACE) == {"suspended": 1, "lifted": 0}

    suspended = account(org)
    assert (suspended.suspension_source, suspended.suspended_at) == (
        SuspensionSource.AUTO,
        OVERDUE + OVERDUE_GRACE,
    )
    assert "never paid" in suspended.suspension_reason
    entry = AuditEntry.objects.get(org=org, action="suspension.suspended")
    assert (entry.actor_type, entry.actor_label) == ("system", "reconcile_suspensions")


@pytest.mark.django_db
def test_running_it_again_changes_nothing(org):
    overdue(org)
    now = OVERDUE + OVERDUE_GRACE + timedelta(days=1)

    reconcile_suspensions(now=now)

    assert reconcile_suspensions(now=now) == {"suspended": 0, "lifted": 0}
    assert AuditEntry.objects.filter(org=org, category="suspension").count() == 1


@pytest.mark.django_db
def test_an_org_that_ever_paid_is_never_suspended(org):
    overdue(org, paid=datetime(2026, 6, 1, tzinfo=UTC))

    assert reconcile_suspensions(now=OVERDUE + timedelta(days=30))["suspended"] == 0


@pytest.mark.django_db
def test_it_lifts_an_auto_suspension_whose_reason_has_gone(org):
    overdue(org)
    reconcile_suspensions(now=OVERDUE + OVERDUE_GRACE)
    BillingAccount.objects.filter(org=org).update(payment_status=PaymentStatus.OK, overdue_since=None)

    assert reconcile_suspensions(now=OVERDUE + OVERDUE_GRACE + timedelta(days=1)) == {
        "suspended": 0,
        "lifted": 1,
    }
    assert account(org).suspended_at is None


@pytest.mark.django_db
def test_a_manual_suspension_survives_the_job(org):
    suspend_organization(org=org, reason="fraud review", actor=STAFF)

    assert reconcile_suspensions(now=OVERDUE + timedelta(days=30)) == {"suspended": 0, "lifted": 0}
    assert (account(org).suspension_source, account(org).suspension_reason) == (
        SuspensionSource.MANUAL,
        "fraud review",
    )


@pytest.mark.django_db
def test_staff_turn_an_auto_suspension_manual_and_lift_any(org):
    overdue(org)
    reconcile_suspensions(now=OVERDUE + OVERDUE_GRACE)

    suspend_organization(org=org, reason="keep it while we talk", actor=STAFF)
    assert account(org).suspension_source == SuspensionSource.MANUAL
    lift_suspension(org=org, reason="resolved on a call", actor=STAFF)
    lift_suspension(org=org, reason="resolved on a call", actor=STAFF)  # again: nothing to do

    assert account(org).suspended_at is None
    assert AuditEntry.objects.filter(org=org, action="suspension.lifted").count() == 1


@pytest.mark.django_db
def test_soft_deleted_orgs_are_skipped(org):
    overdue(org)
    soft_delete_organization(org=org, actor=STAFF, reason="closed")

    assert reconcile_suspensions(now=OVERDUE + timedelta(days=30))["suspended"] == 0


@pytest.mark.django_db
def test_a_suspended_org_gets_402_billing_suspended(api, org, catalog):
    overdue(org)
    reconcile_suspensions(now=OVERDUE + OVERDUE_GRACE)

    response = api.post(
        "/api/v1/entitlements:check",
        {"org_id": org.public_id, "user_id": MEMBER, "metric": "fix_run"},
        format="json",
    )

    assert (response.status_code, response.json()["reason"]) == (402, "billing_suspended")
    assert api.get(f"/api/v1/orgs/{org.public_id}").json()["suspended"] is True


@pytest.mark.django_db
def test_runjob_replays_it_at_an_instant(org):
    overdue(org)
    out = StringIO()

    call_command(
        "runjob", "reconcile_suspensions", "--now", (OVERDUE + OVERDUE_GRACE).isoformat(), stdout=out
    )

    assert json.loads(out.getvalue().splitlines()[-1]) == {
        "job": "reconcile_suspensions",
        "suspended": 1,
        "lifted": 0,
    }


@committing
def test_concurrent_runs_suspend_once():
    orgs = [OrganizationFactory() for _ in range(6)]
    for org in orgs:
        overdue(org)

    results = run_concurrently(
        lambda _: reconcile_suspensions(now=OVERDUE + OVERDUE_GRACE + timedelta(days=1)), 4
    )

    assert sum(r["suspended"] for r in results) == 6
    assert AuditEntry.objects.filter(action="suspension.suspended").count() == 6
