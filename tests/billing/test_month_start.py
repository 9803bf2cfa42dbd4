"""The first minutes of a month: usage in month M is covered by M's allowance however late the job runs."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db.models import Sum

from billing.models import AllowanceClaim, ClaimStatus, CreditBalance, CreditGrant, GrantType
from billing.services import allowances
from tests.conftest import FIX_RUN, FREE_CREDITS, OWNER, PRO_CREDITS, as_api, set_plan
from tests.factories import OrganizationFactory
from usage.models import UsageEvent
from usage.services.events import record_usage_events

pytestmark = pytest.mark.django_db

NOVEMBER_20 = datetime(2026, 11, 20, 12, tzinfo=UTC)
LAST_SECOND = datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC)
HALF_A_MINUTE_IN = datetime(2026, 12, 1, 0, 0, 30, tzinfo=UTC)
FIRST_JOB_RUN = datetime(2026, 12, 1, 0, 2, tzinfo=UTC)  # the job's cadence: hourly at :02


def use(product, org, runs: int, *, at: datetime, key: str) -> UsageEvent:
    with time_machine.travel(at, tick=False):
        record_usage_events(
            product=product,
            events=[
                {
                    "event_id": key,
                    "org_id": org.public_id,
                    "metric": "fix_run",
                    "quantity": str(runs),
                    "occurred_at": at.isoformat(),
                }
            ],
        )
    return UsageEvent.objects.get(product=product, event_id=key)


@pytest.fixture
def exhausted(product, catalog):
    """A pro org and a free org that used all of November's 1 000 credits in its last second."""
    with time_machine.travel(NOVEMBER_20, tick=False):
        pro, free = OrganizationFactory(owner_user_id=OWNER), OrganizationFactory(owner_user_id=OWNER)
        set_plan(pro, "pro")  # November stays at its 1 000 free credits
    for org in (pro, free):
        last = use(product, org, int(FREE_CREDITS / FIX_RUN), at=LAST_SECOND, key=f"november-{org.pk}")
        assert (last.overage, CreditBalance.objects.get(org=org).posted) == (0, 0)  # still November's
    return pro, free


def test_usage_half_a_minute_in_is_covered_before_the_job_runs(product, exhausted):
    pro, free = exhausted

    events = [use(product, org, 4, at=HALF_A_MINUTE_IN, key=f"december-{org.pk}") for org in exhausted]

    assert [(e.overage, e.billable_overage) for e in events] == [(0, 0), (0, 0)]
    for org, credits in ((pro, PRO_CREDITS), (free, FREE_CREDITS)):
        grant = CreditGrant.objects.get(org=org, grant_type=GrantType.ALLOWANCE, expires_at__month=1)
        assert (grant.amount, grant.remaining) == (credits, credits - 4 * FIX_RUN)
    summary = allowances.grant_monthly_allowances(now=FIRST_JOB_RUN)
    assert (summary["granted"], summary["already_granted"]) == (0, 2)  # the debits granted them


def test_the_check_counts_the_allowance_still_due(api, exhausted):
    _, free = exhausted
    body = {"org_id": free.public_id, "user_id": OWNER, "metric": "fix_run", "quantity": "4"}

    with time_machine.travel(LAST_SECOND, tick=False):
        november = api.post("/api/v1/entitlements:check", body, format="json")
    with time_machine.travel(HALF_A_MINUTE_IN, tick=False):
        december = api.post("/api/v1/entitlements:check", body, format="json")
        credits = api.get(f"/api/v1/orgs/{free.public_id}/credits")

    assert (november.status_code, november.json()["reason"]) == (402, "insufficient_credits")
    assert (december.status_code, december.json()["balance"]) == (200, as_api(FREE_CREDITS))
    assert credits.json()["balance"] == as_api(FREE_CREDITS)
    assert not AllowanceClaim.objects.filter(month="2026-12-01").exists()  # the check wrote nothing


def test_a_failed_claim_never_turns_covered_usage_into_billed_overage(product, exhausted, monkeypatch):
    pro, _ = exhausted
    real = allowances.open_ledger

    def broken_for_pro(org_id, **kwargs):
        if org_id == pro.pk:
            raise ConnectionError("database went away")
        return real(org_id, **kwargs)

    monkeypatch.setattr(allowances, "open_ledger", broken_for_pro)
    assert allowances.grant_monthly_allowances(now=FIRST_JOB_RUN)["failed_orgs"] == [pro.public_id]
    monkeypatch.setattr(allowances, "open_ledger", real)

    event = use(product, pro, 4, at=FIRST_JOB_RUN + timedelta(minutes=1), key="after-the-failure")

    assert (event.overage, event.billable_overage) == (0, 0)
    claim = AllowanceClaim.objects.get(org=pro, month="2026-12-01", plan__name="pro")
    assert (claim.status, claim.credits, claim.attempts) == (ClaimStatus.GRANTED, PRO_CREDITS, 2)


def test_fifty_orgs_across_a_month_end_are_billed_only_for_novembers_overage(product, catalog):
    with time_machine.travel(NOVEMBER_20, tick=False):
        orgs = [OrganizationFactory() for _ in range(50)]
        pro = orgs[:25]
        for org in pro:
            set_plan(org, "pro")
    start = datetime(2026, 11, 30, 23, 50, tzinfo=UTC)
    warm_up = int(FREE_CREDITS / FIX_RUN) - 4  # four runs short of November's credits
    with time_machine.travel(start - timedelta(minutes=1), tick=False):
        events = [event(org, "warm-up", warm_up, start - timedelta(minutes=1)) for org in orgs]
        record_usage_events(product=product, events=events)

    minute = start
    while minute <= datetime(2026, 12, 1, 1, 10, tzinfo=UTC):
        with time_machine.travel(minute, tick=False):
            if minute.minute == 2:
                allowances.grant_monthly_allowances()
            batch = [event(org, f"{minute:%H%M}", 1, minute) for org in orgs]
            record_usage_events(product=product, events=batch)
        minute += timedelta(minutes=1)

    december = UsageEvent.objects.filter(occurred_at__gte=datetime(2026, 12, 1, tzinfo=UTC))
    assert december.count() == 50 * 71
    assert december.aggregate(overage=Sum("overage"))["overage"] == 0
    # November ran out at 23:53 (four runs on): its last six minutes are overage, billable on pro only.
    november = UsageEvent.objects.filter(occurred_at__lt=datetime(2026, 12, 1, tzinfo=UTC))
    totals = november.aggregate(overage=Sum("overage"), billable=Sum("billable_overage"))
    assert totals == {"overage": 50 * 6 * FIX_RUN, "billable": 25 * 6 * FIX_RUN}
    assert {b.billed_debt for b in CreditBalance.objects.filter(org__in=pro)} == {0}  # settled


def event(org, key: str, runs: int, at: datetime) -> dict:
    return {
        "event_id": f"{org.public_id}-{key}",
        "org_id": org.public_id,
        "metric": "fix_run",
        "quantity": str(runs),
        "occurred_at": at.isoformat(),
    }
