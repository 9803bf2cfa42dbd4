"""Reconciling reports still unsent 23 h after their first attempt: never a resend unless Stripe
certainly lacks them."""

import logging
from datetime import timedelta

import pytest
import stripe

from billing.services.payments import customer_id_for
from tests.concurrency import committing
from tests.usage.conftest import NOW, beyond, sent_values
from usage.models import MeterReport, MeterReportStatus
from usage.services import metering
from usage.services.metering import report_meter_usage
from usage.services.rollup import rollup_usage

pytestmark = committing

METER_EVENTS = "/v1/billing/meter_events"


@pytest.fixture(autouse=True)
def _no_library_retries(monkeypatch):
    monkeypatch.setattr(stripe, "max_network_retries", 0)


def test_a_lost_answer_in_a_long_run_is_found_after_23_hours_and_not_billed_twice(live, monkeypatch):
    orgs = [live.new_org() for _ in range(3)]
    for org in orgs:
        live.use(org, beyond("3"))
    rollup_usage()
    real = metering.customer_id_for

    def slow(org):  # each org's report is written two minutes into the run after the previous one
        live.clock.shift(timedelta(minutes=2))
        return real(org)

    monkeypatch.setattr(metering, "customer_id_for", slow)
    live.standin.fail_next("POST", METER_EVENTS, status=500, after=True)  # the first org's: it arrived
    first = report_meter_usage()
    monkeypatch.setattr(metering, "customer_id_for", real)
    assert (first["sent"], first["retry"]) == (2, 1)

    live.clock.shift(timedelta(hours=23, minutes=30))
    reconciled = report_meter_usage()
    again = report_meter_usage()

    assert (reconciled["sent"], reconciled["abandoned"], again["written"]) == (1, 0, 0)
    assert sent_values(live.standin, orgs[0]) == [3]
    report = MeterReport.objects.get(org=orgs[0])
    assert (report.status, report.last_error) == (MeterReportStatus.SENT, "Reconciled: Stripe counts 3.")
    assert len(live.standin.requests_to("POST", METER_EVENTS)) == 3  # never resent


def test_a_report_stripe_never_got_is_resent_once_under_a_new_identifier(live):
    org = live.new_org()
    live.use(org, beyond("7"))
    rollup_usage()
    live.standin.fail_next("POST", METER_EVENTS, status=503)  # refused before reaching Stripe
    report_meter_usage()
    live.clock.shift(timedelta(hours=23, minutes=30))

    summaries = [report_meter_usage() for _ in range(3)]

    assert [(s["abandoned"], s["written"], s["sent"]) for s in summaries] == [(1, 0, 0), (0, 1, 1), (0, 0, 0)]
    assert [event["identifier"] for event in live.standin.meter_events] == [f"ovg-{org.public_id}-2"]
    assert sent_values(live.standin, org) == [7]


def test_an_attempt_stripe_does_not_count_yet_is_unclear_and_never_resent(live):
    org = live.new_org()
    live.use(org, beyond("7"))
    rollup_usage()
    live.standin.summary_delay = 45 * 60  # Stripe's summaries lag 45 minutes behind
    live.standin.fail_next("POST", METER_EVENTS, status=503)
    report_meter_usage()  # first attempt at NOW: refused
    live.clock.shift(timedelta(hours=22, minutes=50))
    live.standin.fail_next("POST", METER_EVENTS, status=500, after=True)
    assert report_meter_usage()["retry"] == 1  # this attempt arrived; its answer was lost
    live.clock.shift(timedelta(minutes=11))  # 23 h 1 min after the first attempt

    unclear = report_meter_usage()
    assert (unclear["unclear"], unclear["abandoned"], unclear["sent"]) == (1, 0, 0)
    assert MeterReport.objects.get().status == MeterReportStatus.PENDING
    assert "younger than" in MeterReport.objects.get().last_error

    live.clock.shift(timedelta(hours=1))  # the summaries have caught up
    settled = report_meter_usage()
    report_meter_usage()

    assert (settled["sent"], settled["abandoned"]) == (1, 0)
    assert sent_values(live.standin, org) == [7]
    assert MeterReport.objects.count() == 1


def test_a_total_that_does_not_match_exactly_is_unclear_and_kept_for_staff(live, caplog):
    org = live.new_org()
    live.use(org, beyond("7"))
    rollup_usage()
    live.standin.fail_next("POST", METER_EVENTS, status=500, after=True)
    report_meter_usage()
    stripe.billing.MeterEvent.create(  # something else reached the org's meter in the same minute
        event_name="overage_credits",
        payload={"stripe_customer_id": customer_id_for(org), "value": "5"},
        timestamp=int(NOW.timestamp()),
    )
    live.clock.shift(timedelta(hours=23, minutes=30))

    with caplog.at_level(logging.ERROR, logger="usage.services.reconciliation"):
        summary = report_meter_usage()

    assert (summary["unclear"], summary["sent"], summary["abandoned"]) == (1, 0, 0)
    report = MeterReport.objects.get()
    assert report.status == MeterReportStatus.PENDING
    assert report.next_attempt_at == NOW + timedelta(hours=24, minutes=30)
    assert "Stripe counts 12" in report.last_error and report.identifier in caplog.text
    assert len(live.standin.requests_to("POST", METER_EVENTS)) == 2  # nothing resent


def test_the_window_takes_in_other_reports_of_the_org_that_reach_into_it(live):
    org = live.new_org()
    live.use(org, beyond("2"))
    rollup_usage()
    report_meter_usage()  # report 1, sent at NOW
    live.use(org, "4")
    rollup_usage()
    live.standin.fail_next("POST", METER_EVENTS, status=500, after=True)
    report_meter_usage()  # report 2, in the same minute: it arrived, the answer was lost
    live.clock.shift(timedelta(hours=23, minutes=30))

    assert report_meter_usage()["sent"] == 1

    assert sent_values(live.standin, org) == [2, 4]
    assert MeterReport.objects.get(sequence=2).last_error == "Reconciled: Stripe counts 6."


def test_reports_written_before_attempts_were_recorded_get_the_widest_true_bounds(live):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("usage.migrations.0006_meter_report_attempts")
    org = live.new_org()
    common = {"org": org, "carried": 0, "billable_total": 3, "customer_id": customer_id_for(org)}
    sent = MeterReport.objects.create(
        identifier="ovg-old-1", sequence=1, value=3, status=MeterReportStatus.SENT, sent_at=NOW, **common
    )
    pending = MeterReport.objects.create(
        identifier="ovg-old-2", sequence=2, value=4, status=MeterReportStatus.PENDING, **common
    )
    shadow = MeterReport.objects.create(
        identifier="shadow-old-1", sequence=3, value=4, status=MeterReportStatus.SHADOW, **common
    )

    migration.bound_legacy_attempts(apps, None)

    for report in (sent, pending, shadow):
        report.refresh_from_db()
    assert (sent.earliest_timestamp, sent.latest_timestamp) == (
        NOW - timedelta(days=35),
        NOW + timedelta(minutes=5),
    )
    assert (pending.first_attempt_at, pending.earliest_timestamp) == (NOW, NOW - timedelta(days=35))
    assert pending.last_attempt_at == NOW  # the migration's own time: checked again only once settled
    assert (shadow.first_attempt_at, shadow.earliest_timestamp) == (None, None)  # never sent
