"""The ledger rules, at the service level: draws, overage, settlement, owed credits, expiry, drift."""

from datetime import timedelta
from decimal import Decimal as D

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone

from billing.models import CreditBalance, CreditGrant, EntryType, GrantType, LedgerDrift, LedgerEntry
from billing.services.debits import debit_usage
from billing.services.grants import grant_credits
from billing.services.ledger import check_ledger_consistency, expire_credit_grants
from orgs.services.audit import Actor
from tests.conftest import FREE_CREDITS, set_plan
from tests.factories import OrganizationFactory

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("tests")


def grant(org, amount, expires_in_days=None, grant_type=GrantType.BONUS):
    expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
    return grant_credits(
        org=org, amount=D(amount), grant_type=grant_type, reason="t", actor=SYSTEM, expires_at=expires_at
    )[0]


def debit(org, *costs):
    with transaction.atomic():
        return debit_usage(costs_by_org={org.pk: [(i, D(c)) for i, c in enumerate(costs)]}, reference="test")


def posted(org):
    return CreditBalance.objects.get(org=org).posted


@pytest.fixture
def org(db):
    return OrganizationFactory()  # holds this month's free allowance (FREE_CREDITS), expiring at month end


@time_machine.travel("2026-11-10T12:00:00Z", tick=False)
def test_debits_draw_from_the_grants_that_expire_soonest():
    org = OrganizationFactory()  # its free allowance expires at the month's end, in 20 days
    late = grant(org, "100", expires_in_days=400)
    soon = grant(org, "100", expires_in_days=2)
    never = grant(org, "100")

    debit(org, "150")

    allowance = CreditGrant.objects.get(org=org, grant_type=GrantType.ALLOWANCE)
    left = {g.pk: g.remaining for g in CreditGrant.objects.filter(pk__in=[late.pk, soon.pk, never.pk])}
    assert (left[soon.pk], allowance.remaining, left[late.pk], left[never.pk]) == (
        0,
        FREE_CREDITS - 50,
        100,
        100,
    )


def test_one_batch_is_one_debit_entry_with_covered_and_overage(org):
    first, second = FREE_CREDITS * D("0.6"), FREE_CREDITS * D("0.3")
    third = FREE_CREDITS - first - second + 300  # 300 more than the month's credits
    overages = debit(org, str(first), str(second), str(third))

    entry = LedgerEntry.objects.get(org=org, entry_type=EntryType.DEBIT)
    assert (entry.amount, entry.covered, entry.overage, entry.balance_after) == (
        -(FREE_CREDITS + 300),
        FREE_CREDITS,
        D(300),
        D(-300),
    )
    assert overages == {2: (D(300), False)}  # the third event, on a free plan: not billable
    assert posted(org) == D(-300)


def test_an_overage_plan_settles_a_negative_balance_before_a_grant(org):
    set_plan(org, "pro")
    debit(org, str(FREE_CREDITS + 300))

    grant(org, "50")

    types = list(LedgerEntry.objects.filter(org=org).order_by("id").values_list("entry_type", "amount"))
    assert types[-2:] == [(EntryType.SETTLEMENT, D(300)), (EntryType.GRANT, D(50))]
    assert posted(org) == D(50)


def test_without_overage_a_new_grant_pays_what_is_owed_first(org):
    debit(org, str(FREE_CREDITS + 300))  # free plan: 300 owed

    new = grant(org, "500")

    new.refresh_from_db()
    assert (new.amount, new.remaining) == (D(500), D(200))
    assert posted(org) == D(200)
    assert not LedgerEntry.objects.filter(entry_type=EntryType.SETTLEMENT).exists()


def test_expired_grants_leave_by_an_expiry_entry_once(org):
    short = grant(org, "100", expires_in_days=1)
    later = timezone.now() + timedelta(days=2)

    first = expire_credit_grants(now=later)
    second = expire_credit_grants(now=later)

    short.refresh_from_db()
    assert short.remaining == 0 and short.expired_at == later
    assert first["expired_grants"] >= 1 and second == {"expired_grants": 0, "expired_credits": "0"}
    assert LedgerEntry.objects.filter(grant=short, entry_type=EntryType.EXPIRY).get().amount == D(-100)


@pytest.mark.time_machine("2026-11-10T12:00:00Z", tick=False)  # two days later is the same month
def test_a_debit_never_draws_on_an_expired_grant(org):
    grant(org, "100", expires_in_days=1)
    CreditGrant.objects.filter(org=org, grant_type=GrantType.ALLOWANCE).update(
        expires_at=timezone.now() - timedelta(1)
    )

    with transaction.atomic():
        overages = debit_usage(
            costs_by_org={org.pk: [(1, D(150))]}, reference="t", now=timezone.now() + timedelta(days=2)
        )

    assert overages == {1: (D(150), False)}
    assert posted(org) == D(-150)
    assert LedgerEntry.objects.filter(org=org, entry_type=EntryType.EXPIRY).count() == 2


def test_the_consistency_check_passes_after_real_work_and_finds_drift(org):
    grant(org, "10", expires_in_days=1)
    debit(org, "5", "7.5")
    assert check_ledger_consistency() == {
        "orgs_checked": CreditBalance.objects.count(),
        "drifted": 0,
        "drifted_orgs": [],
    }

    CreditBalance.objects.filter(org=org).update(posted=D("1.5"))  # a write around the ledger
    summary = check_ledger_consistency()

    assert summary["drifted"] == 1 and summary["drifted_orgs"] == [org.public_id]
    drift = LedgerDrift.objects.get()
    assert (drift.posted, drift.ledger_sum) == (D("1.5"), FREE_CREDITS + 10 - D("12.5"))


def test_ledger_entries_are_append_only(org):
    entry = LedgerEntry.objects.filter(org=org).first()

    with pytest.raises(ValueError, match="append-only"):
        entry.save()
    with pytest.raises(ValueError, match="append-only"):
        entry.delete()


def test_orgs_are_debited_independently(org):
    other = OrganizationFactory()

    with transaction.atomic():
        debit_usage(costs_by_org={other.pk: [(1, D(10))], org.pk: [(2, D(20))]}, reference="t")

    assert (posted(org), posted(other)) == (FREE_CREDITS - 20, FREE_CREDITS - 10)
