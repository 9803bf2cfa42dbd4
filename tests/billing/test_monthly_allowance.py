import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.db import transaction

from billing.models import (
    AllowanceClaim,
    BillingAccount,
    ClaimStatus,
    CreditBalance,
    CreditGrant,
    EntryType,
    GrantType,
    LedgerEntry,
    PaymentStatus,
    Plan,
)
from billing.services import allowances
from billing.services.accounts import soft_delete_organization
from billing.services.debits import debit_usage
from billing.services.grants import grant_credits
from billing.services.ledger import expire_credit_grants
from billing.services.payments import apply_plan, lock_account
from orgs.services.audit import Actor
from tests.concurrency import committing, run_concurrently
from tests.conftest import FREE_CREDITS, PRO_CREDITS, TEAM_CREDITS, set_plan
from tests.factories import OrganizationFactory

NOVEMBER = datetime(2026, 11, 10, 12, tzinfo=UTC)
DECEMBER_1 = datetime(2026, 12, 1, 0, 5, tzinfo=UTC)

# Every test here names the instants it is about; between them the clock stands in November.
pytestmark = pytest.mark.time_machine(NOVEMBER, tick=False)


def allowance_grants(org):
    return CreditGrant.objects.filter(org=org, grant_type=GrantType.ALLOWANCE).order_by("id")


@pytest.fixture
def november_org(db):
    with time_machine.travel(NOVEMBER, tick=False):
        return OrganizationFactory()


@pytest.mark.django_db
def test_a_new_org_gets_the_free_allowance_until_the_month_ends(november_org):
    grant = allowance_grants(november_org).get()

    assert (grant.amount, grant.expires_at) == (FREE_CREDITS, datetime(2026, 12, 1, tzinfo=UTC))
    claim = AllowanceClaim.objects.get(org=november_org)
    assert (claim.month.isoformat(), claim.plan.name, claim.status) == (
        "2026-11-01",
        "free",
        ClaimStatus.GRANTED,
    )


@pytest.mark.django_db
def test_the_job_grants_each_month_once(november_org):
    first = allowances.grant_monthly_allowances(now=DECEMBER_1)
    second = allowances.grant_monthly_allowances(now=DECEMBER_1)

    assert (first["month"], first["granted"], second["granted"]) == ("2026-12", 1, 0)
    assert second["already_granted"] == 1
    december = allowance_grants(november_org).last()
    assert december.expires_at == datetime(2027, 1, 1, tzinfo=UTC)


@pytest.mark.django_db
def test_the_november_allowance_does_not_roll_over(november_org):
    allowances.grant_monthly_allowances(now=DECEMBER_1)

    expire_credit_grants(now=DECEMBER_1)

    november, december = allowance_grants(november_org)
    assert (november.remaining, december.remaining) == (0, FREE_CREDITS)
    assert CreditBalance.objects.get(org=november_org).posted == FREE_CREDITS


@pytest.mark.django_db
def test_an_org_on_pro_gets_the_pro_allowance_and_a_past_due_one_the_free(november_org):
    with time_machine.travel(NOVEMBER, tick=False):
        pro = OrganizationFactory()
    set_plan(pro, "pro")
    set_plan(november_org, "pro", payment_status=PaymentStatus.PAST_DUE)

    allowances.grant_monthly_allowances(now=DECEMBER_1)

    assert allowance_grants(pro).last().amount == PRO_CREDITS
    assert allowance_grants(november_org).last().amount == FREE_CREDITS
    assert AllowanceClaim.objects.get(org=november_org, month="2026-12-01").plan.name == "free"


@pytest.mark.django_db
def test_an_overage_plans_negative_balance_is_settled_before_the_grant(november_org):
    set_plan(november_org, "pro")
    with transaction.atomic():
        debit_usage(costs_by_org={november_org.pk: [(1, FREE_CREDITS + 300)]}, reference="t", now=NOVEMBER)

    allowances.grant_monthly_allowances(now=DECEMBER_1)

    last = list(
        LedgerEntry.objects.filter(org=november_org).order_by("id").values_list("entry_type", "amount")
    )[-2:]
    assert last == [(EntryType.SETTLEMENT, D(300)), (EntryType.GRANT, PRO_CREDITS)]
    assert CreditBalance.objects.get(org=november_org).posted == PRO_CREDITS


@pytest.mark.django_db
def test_a_failed_grant_is_recorded_and_retried_next_run(november_org, monkeypatch):
    with time_machine.travel(NOVEMBER, tick=False):
        other = OrganizationFactory()
    real = allowances.open_ledger

    def broken_for_one_org(org_id, **kwargs):
        if org_id == november_org.pk:
            raise ConnectionError("database went away")
        return real(org_id, **kwargs)

    monkeypatch.setattr(allowances, "open_ledger", broken_for_one_org)
    summary = allowances.grant_monthly_allowances(now=DECEMBER_1)

    assert (summary["granted"], summary["failed"], summary["failed_orgs"]) == (1, 1, [november_org.public_id])
    claim = AllowanceClaim.objects.get(org=november_org, month="2026-12-01")
    assert (claim.status, claim.grant) == (ClaimStatus.FAILED, None)
    assert "database went away" in claim.last_error
    assert allowance_grants(november_org).count() == 1  # nothing half-written
    assert allowance_grants(other).count() == 2

    monkeypatch.setattr(allowances, "open_ledger", real)
    retry = allowances.grant_monthly_allowances(now=datetime(2026, 12, 1, 1, 5, tzinfo=UTC))

    assert (retry["granted"], retry["failed"]) == (1, 0)
    claim.refresh_from_db()
    assert (claim.status, claim.attempts, claim.last_error) == (ClaimStatus.GRANTED, 2, "")


@pytest.mark.django_db
def test_soft_deleted_orgs_are_skipped(november_org):
    soft_delete_organization(org=november_org, actor=Actor.system("t"), reason="closed")

    assert allowances.grant_monthly_allowances(now=DECEMBER_1)["granted"] == 0


@pytest.mark.django_db
def test_runjob_replays_a_missed_month_start(november_org):
    out = StringIO()

    call_command("runjob", "grant_monthly_allowances", "--now", "2026-12-01T00:05:00Z", stdout=out)

    summary = json.loads(out.getvalue().splitlines()[-1])
    assert (summary["job"], summary["month"], summary["granted"]) == (
        "grant_monthly_allowances",
        "2026-12",
        1,
    )


def change_plan(org, name: str, **account):
    """What Stripe's subscription events do (sync_plan), without Stripe: apply the plan under the lock."""
    BillingAccount.objects.filter(org=org).update(**account)
    with transaction.atomic():
        apply_plan(account=lock_account(org), plan=Plan.objects.get(name=name), actor=Actor.system("t"))


@pytest.mark.django_db
def test_an_upgrade_tops_the_month_up_to_the_new_plans_amount_once(november_org):
    with time_machine.travel(NOVEMBER, tick=False):
        change_plan(november_org, "pro")
        change_plan(november_org, "pro")  # the same decision again grants nothing
        change_plan(november_org, "team")

        tops = [FREE_CREDITS, PRO_CREDITS - FREE_CREDITS, TEAM_CREDITS - PRO_CREDITS]
        assert [g.amount for g in allowance_grants(november_org)] == tops
        assert CreditBalance.objects.get(org=november_org).posted == TEAM_CREDITS


@pytest.mark.django_db
def test_a_downgrade_in_the_month_grants_nothing_more(november_org):
    with time_machine.travel(NOVEMBER, tick=False):
        change_plan(november_org, "team")
        change_plan(november_org, "pro")
        change_plan(november_org, "team")

        assert [g.amount for g in allowance_grants(november_org)] == [
            FREE_CREDITS,
            TEAM_CREDITS - FREE_CREDITS,
        ]
        assert AllowanceClaim.objects.get(org=november_org, plan__name="pro").credits == 0


@pytest.mark.django_db
def test_a_pro_org_that_goes_past_due_mid_month_gets_no_free_allowance_on_top(november_org):
    with time_machine.travel(NOVEMBER, tick=False):
        change_plan(november_org, "pro")
    allowances.grant_monthly_allowances(now=DECEMBER_1)  # December starts on pro
    BillingAccount.objects.filter(org=november_org).update(payment_status=PaymentStatus.PAST_DUE)
    december_10 = DECEMBER_1 + timedelta(days=9)

    summary = allowances.grant_monthly_allowances(now=december_10)

    assert summary["granted"] == 1  # the free plan's claim, with nothing to add
    december = allowance_grants(november_org).filter(expires_at=datetime(2027, 1, 1, tzinfo=UTC))
    assert [g.amount for g in december] == [PRO_CREDITS]
    assert AllowanceClaim.objects.get(org=november_org, month="2026-12-01", plan__name="free").credits == 0
    assert allowances.grant_monthly_allowances(now=december_10)["granted"] == 0


@pytest.mark.django_db
def test_a_free_orgs_debt_is_not_written_off_when_it_upgrades(november_org):
    with time_machine.travel(NOVEMBER, tick=False):
        with transaction.atomic():
            debit_usage(costs_by_org={november_org.pk: [(1, D(1300))]}, reference="t")  # 300 owed, unbilled

        change_plan(november_org, "pro")
        grant_credits(
            org=november_org,
            amount=D(100),
            grant_type=GrantType.BONUS,
            reason="goodwill",
            actor=Actor.system("t"),
        )

    balance = CreditBalance.objects.get(org=november_org)
    assert not LedgerEntry.objects.filter(org=november_org, entry_type=EntryType.SETTLEMENT).exists()
    assert (balance.posted, balance.billed_debt) == (D(19000) + D(100) - D(300), 0)


@committing
def test_concurrent_runs_grant_once():
    with time_machine.travel(NOVEMBER, tick=False):
        orgs = [OrganizationFactory() for _ in range(5)]

    summaries = run_concurrently(lambda _: allowances.grant_monthly_allowances(now=DECEMBER_1), 4)

    assert sum(s["granted"] for s in summaries) == 5
    assert sum(s["failed"] for s in summaries) == 0
    for org in orgs:
        assert allowance_grants(org).count() == 2
        # November's allowance expired as December's arrived: no rollover.
        assert CreditBalance.objects.get(org=org).posted == FREE_CREDITS
