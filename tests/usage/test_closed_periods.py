"""A closed period is checked against Stripe's meter once its invoice is final; staff correct a difference."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
import stripe
from django.urls import reverse

from billing import stripe_api
from billing.models import Plan
from billing.services.catalog_sync import METER_EVENT
from billing.services.payments import customer_id_for
from billingsite.jobs import run_job
from core.errors import Conflict
from orgs.models import AuditEntry
from orgs.services.audit import Actor
from tests.concurrency import committing, run_concurrently
from tests.conftest import submitted
from tests.usage.conftest import beyond, sent_values
from usage.models import (
    ClosedPeriod,
    ClosedPeriodStatus,
    MeterParity,
    MeterReport,
    MeterReportKind,
    MeterReportStatus,
)
from usage.services.metering import report_meter_usage
from usage.services.parity import check_meter_parity
from usage.services.period_close import check_closed_periods, correct_closed_period
from usage.services.rollup import rollup_usage

pytestmark = committing

PERIOD_END = datetime(2026, 11, 20, 15, 20, tzinfo=UTC)
PERIOD_START = PERIOD_END - timedelta(days=30)


def at(text: str) -> datetime:
    return datetime.fromisoformat(f"2026-11-20T{text}+00:00")


def hourly(live, when: datetime) -> None:
    live.clock.move_to(when)
    rollup_usage()
    report_meter_usage()


@pytest.fixture
def period(live, post_webhook):
    """An org on pro that used 2 overage credits (reported at 13:10), 3 more (reported at 15:10) and
    4 in the last hour (reported when the period's invoice opened at 15:27): `finalize()` finalizes
    that invoice."""
    org = live.new_org()
    pro = Plan.objects.get(name="pro")
    subscription = live.standin.add_subscription(
        customer_id_for(org),
        items=[pro.stripe_price_id, pro.stripe_overage_price_id],
        current_period_start=int(PERIOD_START.timestamp()),
        current_period_end=int(PERIOD_END.timestamp()),
    )
    for used, credits, run in (("12:30:00", beyond("2"), "13:10:00"), ("14:30:00", "3", "15:10:00")):
        live.clock.move_to(at(used))
        live.use(org, credits, at=at(used).isoformat())
        hourly(live, at(run))
    live.clock.move_to(at("15:15:00"))
    live.use(org, "4", at=at("15:15:00").isoformat())
    live.clock.move_to(at("15:27:00"))
    invoice = live.standin.close_period(subscription["id"])
    assert post_webhook(live.standin.event("invoice.created", invoice["id"])).status_code == 200
    assert sent_values(live.standin, org) == [2, 3, 4]

    def finalize():
        live.clock.move_to(at("16:27:00"))
        return live.standin.finalize_invoice(invoice["id"])

    return type(
        "Period",
        (),
        {
            "org": org,
            "invoice": invoice,
            "pro": pro,
            "standin": live.standin,
            "finalize": staticmethod(finalize),
        },
    )


def lose_in_stripe(period) -> None:
    """The 3 credits reported at 15:10 are accepted by Stripe, then not counted."""
    live_report = MeterReport.objects.get(org=period.org, value=3)
    period.standin.lose_meter_event(live_report.identifier)


def count_twice_in_stripe(period, credits: int) -> None:
    """A meter event inside the period that no report of ours sent (say, made by hand in Stripe)."""
    stripe_api.create_meter_event(
        event_name=METER_EVENT,
        customer_id=customer_id_for(period.org),
        value=credits,
        identifier="by-hand-1",
        timestamp=int(at("14:00:00").timestamp()),
        attempt=1,
    )


def checked(live, when: str = "17:30:00") -> ClosedPeriod:
    live.clock.move_to(at(when))
    check_closed_periods()
    return ClosedPeriod.objects.get()


def test_a_period_is_recorded_when_its_invoice_opens_and_checked_once_final(live, period):
    closed = ClosedPeriod.objects.get()
    assert (closed.org, closed.invoice_id, closed.period_start, closed.period_end, closed.status) == (
        period.org,
        period.invoice["id"],
        PERIOD_START,
        PERIOD_END,
        ClosedPeriodStatus.OPEN,
    )
    live.clock.move_to(at("17:30:00"))
    assert check_closed_periods() == {"matched": 0, "discrepancy": 0, "open": 1}  # still a draft at Stripe
    assert ClosedPeriod.objects.get().note == "Its invoice is still a draft."

    invoice = period.finalize()
    closed = checked(live, "18:30:00")

    assert closed.status == ClosedPeriodStatus.MATCHED
    assert (closed.plan, closed.overage_reported, closed.stripe_counted) == ("pro", 9, D(9))
    overage_cents = int(9 * period.pro.overage_cents_per_credit)
    assert (closed.amount_invoiced_cents, closed.currency) == (invoice["total"], invoice["currency"])
    assert closed.amount_invoiced_cents == period.pro.monthly_price_cents + overage_cents
    assert closed.included_used == min(period.pro.monthly_credits, closed.included_used)  # capped
    assert closed.included_used > 0


def test_checking_twice_changes_nothing(live, period):
    period.finalize()
    first = checked(live)
    live.clock.move_to(at("23:00:00"))

    assert check_closed_periods() == {"matched": 0, "discrepancy": 0, "open": 0}  # nothing due
    again = ClosedPeriod.objects.get()
    assert (again.status, again.checked_at, again.stripe_counted) == (
        first.status,
        first.checked_at,
        first.stripe_counted,
    )


def test_a_period_waits_while_stripe_summaries_may_lag_or_stripe_is_down(live, period, monkeypatch):
    monkeypatch.setattr(stripe, "max_network_retries", 0)
    period.finalize()
    live.standin.fail_next("GET", "/v1/invoices/", status=503)

    closed = checked(live)

    assert closed.status == ClosedPeriodStatus.OPEN
    assert closed.note.startswith("Stripe unavailable")
    assert closed.next_check_at > at("17:30:00")
    assert checked(live, "19:00:00").status == ClosedPeriodStatus.MATCHED


def test_a_report_stripe_lost_is_a_discrepancy_shown_in_parity_and_corrected_by_a_report(live, period):
    lose_in_stripe(period)
    period.finalize()

    closed = checked(live)

    assert closed.status == ClosedPeriodStatus.DISCREPANCY
    assert (closed.overage_reported, closed.stripe_counted, closed.difference) == (9, D(6), D(-3))
    assert closed.amount_invoiced_cents == period.pro.monthly_price_cents + int(
        6 * period.pro.overage_cents_per_credit
    )
    check_meter_parity()
    parity = MeterParity.objects.get()
    assert parity.drift
    assert f"closed period {closed} differs from Stripe by -3" in parity.details["problems"]

    corrected = correct_closed_period(
        period_id=closed.pk, reason="Stripe lost the 15:10 report", actor=Actor.system("t")
    )

    report = corrected.correction_report
    assert (report.kind, report.value, report.status) == (
        MeterReportKind.CORRECTION,
        3,
        MeterReportStatus.PENDING,
    )
    live.clock.move_to(at("17:45:00"))
    live.use(period.org, "5", at=at("17:40:00").isoformat())  # the next period's overage
    hourly(live, at("18:10:00"))
    report.refresh_from_db()
    assert report.status == MeterReportStatus.SENT
    # The correction is sent on its own; the next period's overage is reported whole beside it.
    assert sent_values(live.standin, period.org) == [2, 4, 3, 5]  # 3 lost, then 3 anew
    entry = AuditEntry.objects.get(action="closed_period.corrected")
    assert (entry.reason, entry.invoice_id, entry.after["credits"]) == (
        "Stripe lost the 15:10 report",
        closed.invoice_id,
        "3",
    )

    live.clock.move_to(at("20:00:00"))
    check_meter_parity()
    latest = MeterParity.objects.first()
    assert (latest.drift, latest.details["problems"]) == (False, [])

    with pytest.raises(Conflict):
        correct_closed_period(period_id=closed.pk, reason="again", actor=Actor.system("t"))
    assert MeterReport.objects.filter(kind=MeterReportKind.CORRECTION).count() == 1


def test_credits_stripe_counted_twice_are_credited_to_the_customer_once(live, period):
    count_twice_in_stripe(period, 2)
    period.finalize()
    closed = checked(live)
    assert (closed.status, closed.difference) == (ClosedPeriodStatus.DISCREPANCY, D(2))

    corrected = correct_closed_period(period_id=closed.pk, reason="billed twice", actor=Actor.system("t"))

    cents = int(2 * period.pro.overage_cents_per_credit)
    assert corrected.credited_cents == cents
    customer = live.standin.get(customer_id_for(period.org))
    assert customer["balance"] == -cents
    credits = live.standin.requests_to("POST", f"/v1/customers/{customer['id']}/balance_transactions")
    assert [(r.params["amount"], r.params["currency"]) for r in credits] == [
        (str(-cents), period.pro.currency)
    ]
    assert credits[0].idempotency_key == f"closed-period:{closed.pk}:credit"
    with pytest.raises(Conflict):
        correct_closed_period(period_id=closed.pk, reason="again", actor=Actor.system("t"))
    assert len(live.standin.requests_to("POST", f"/v1/customers/{customer['id']}/balance_transactions")) == 1


def test_a_matched_period_has_nothing_to_correct(live, period):
    period.finalize()
    closed = checked(live)

    with pytest.raises(Conflict):
        correct_closed_period(period_id=closed.pk, reason="why not", actor=Actor.system("t"))
    assert not MeterReport.objects.filter(kind=MeterReportKind.CORRECTION).exists()


def test_runjob_checks_closed_periods(live, period):
    period.finalize()
    live.clock.move_to(at("17:30:00"))

    assert run_job("check_closed_periods") == {"matched": 1, "discrepancy": 0, "open": 0}


def test_the_org_page_lists_closed_periods_and_billing_admins_correct_them(live, period, admin_client):
    lose_in_stripe(period)
    period.finalize()
    closed = checked(live)
    page = reverse("admin:orgs_organization_change", args=[period.org.pk])

    html = admin_client.get(page).content.decode()

    assert "Closed periods" in html
    assert "differs from Stripe by -3" in html
    assert "Correct a closed period" in html
    act = reverse("admin:orgs_organization_act", args=[period.org.pk, "correct-period"])
    form = submitted({"period": closed.pk, "reason": "Stripe lost one"})
    assert admin_client.post(act, form).status_code == 302
    again = admin_client.post(act, form, follow=True)  # the same form again: one correction, and it says so
    assert "already submitted" in again.content.decode()
    closed.refresh_from_db()
    assert closed.status == ClosedPeriodStatus.CORRECTED
    assert MeterReport.objects.filter(kind=MeterReportKind.CORRECTION).count() == 1
    html = admin_client.get(page).content.decode()
    assert "3 credits reported" in html
    assert "Correct a closed period" not in html  # nothing left to correct


def test_support_sees_closed_periods_but_cannot_correct_them(live, period, support):
    lose_in_stripe(period)
    period.finalize()
    closed = checked(live)

    html = support.get(reverse("admin:orgs_organization_change", args=[period.org.pk])).content.decode()
    assert "differs from Stripe by -3" in html
    assert "Correct a closed period" not in html
    act = reverse("admin:orgs_organization_act", args=[period.org.pk, "correct-period"])
    response = support.post(act, submitted({"period": closed.pk, "reason": "try"}))
    assert response.status_code == 403
    closed.refresh_from_db()
    assert closed.status == ClosedPeriodStatus.DISCREPANCY


def test_a_correction_stripe_never_took_is_drift(live, period):
    lose_in_stripe(period)
    period.finalize()
    closed = checked(live)
    report = correct_closed_period(
        period_id=closed.pk, reason="lost", actor=Actor.system("t")
    ).correction_report
    # Reconciliation found it absent at Stripe a day later: nothing reports its credits anew.
    MeterReport.objects.filter(pk=report.pk).update(status=MeterReportStatus.ABANDONED)

    check_meter_parity()

    parity = MeterParity.objects.get()
    assert parity.drift
    assert parity.details["problems"] == [
        f"the correction {report.identifier} of closed period {closed} was abandoned"
    ]


def test_two_staff_correcting_at_once_correct_once(live, period):
    lose_in_stripe(period)
    period.finalize()
    closed = checked(live)

    def correct(index):
        try:
            correct_closed_period(
                period_id=closed.pk, reason=f"staff {index}", actor=Actor.system(f"s{index}")
            )
        except Conflict:
            return "refused"
        return "corrected"

    assert sorted(run_concurrently(correct, 4)) == ["corrected", "refused", "refused", "refused"]
    assert MeterReport.objects.filter(kind=MeterReportKind.CORRECTION).count() == 1
    assert AuditEntry.objects.filter(action="closed_period.corrected").count() == 1
