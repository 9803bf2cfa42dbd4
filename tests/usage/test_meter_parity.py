import json
from decimal import Decimal as D
from io import StringIO

from django.core.management import call_command

from tests.concurrency import committing
from tests.usage.conftest import beyond
from usage.models import MeterParity, MeterReport, MeterReportStatus, UsageBucket
from usage.services.metering import report_meter_usage
from usage.services.parity import check_meter_parity
from usage.services.rollup import rollup_usage

pytestmark = committing


def test_events_buckets_reports_and_stripe_agree(live):
    org = live.new_org()
    live.use(org, beyond("2.5"))
    rollup_usage()
    report_meter_usage()
    live.use(org, "1")  # not rolled up yet: later events are not drift

    summary = check_meter_parity()

    assert (summary["orgs"], summary["drift"]) == (1, 0)
    check = MeterParity.objects.get()
    assert (check.events_total, check.buckets_total, check.reported_total, check.stripe_total) == (
        D("2.5"),
        D("2.5"),
        D(2),
        D(2),
    )
    assert check.details["unreported"] == "0.500000"


def test_a_bucket_that_lost_an_event_is_drift(live):
    org = live.new_org()
    live.use(org, beyond("4"))
    rollup_usage()
    UsageBucket.objects.filter(org=org).update(billable_overage=D(1))

    summary = check_meter_parity()

    assert summary["drifted_orgs"] == [org.pk]
    assert MeterParity.objects.get().details["problems"] == ["events and buckets differ"]


def test_a_report_stripe_does_not_count_is_drift(live):
    org = live.new_org()
    live.use(org, beyond("3"))
    rollup_usage()
    report_meter_usage()
    sent = MeterReport.objects.get()
    # A report recorded as sent that never reached Stripe.
    MeterReport.objects.create(
        org=org,
        identifier="ovg-lost",
        sequence=2,
        value=5,
        carried=0,
        billable_total=D(8),
        status=MeterReportStatus.SENT,
        customer_id=sent.customer_id,
        sent_at=sent.sent_at,
        stripe_timestamp=sent.stripe_timestamp,
    )

    check_meter_parity()

    check = MeterParity.objects.get()
    assert (check.drift, check.stripe_total, check.details["sent_total"]) == (True, D(3), "8")
    assert check.details["problems"] == ["sent reports and Stripe differ"]


def test_runjob_runs_it(live):
    org = live.new_org()
    live.use(org, beyond("2"))
    rollup_usage()
    out = StringIO()

    call_command("runjob", "check_meter_parity", stdout=out)

    assert json.loads(out.getvalue().splitlines()[-1])["orgs"] == 1
