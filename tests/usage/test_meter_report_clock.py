"""`runjob report_meter_usage --now <past>`: --now evaluates the time rules, Stripe gets the real time."""

import json
from datetime import datetime, timedelta
from io import StringIO

import stripe
from django.core.management import call_command

from tests.concurrency import committing
from tests.usage.conftest import NOW, beyond, sent_values
from usage.models import MeterReport, MeterReportStatus
from usage.services.rollup import rollup_usage

pytestmark = committing


def runjob(now: str) -> dict:
    out = StringIO()
    call_command("runjob", "report_meter_usage", "--now", now, stdout=out)
    return json.loads(out.getvalue().splitlines()[-1])


def test_a_replayed_run_stamps_its_meter_events_with_the_real_time(live):
    org = live.new_org()
    live.use(org, beyond("4"))
    rollup_usage()

    summary = runjob("2026-11-20T09:10:00Z")  # replaying a missed run, six hours late

    assert summary["sent"] == 1
    (event,) = live.standin.meter_events
    assert event["timestamp"] == int(NOW.timestamp())  # not the replayed instant
    report = MeterReport.objects.get()
    assert (report.stripe_timestamp, report.sent_at) == (NOW, NOW)


def test_a_replay_older_than_35_days_is_still_billed(live):
    org = live.new_org()
    live.use(org, beyond("3"))
    rollup_usage()

    summary = runjob("2026-10-01T00:10:00Z")  # Stripe refuses timestamps older than 35 days

    assert (summary["sent"], summary["failed"]) == (1, 0)
    assert sent_values(live.standin, org) == [3]
    assert MeterReport.objects.get().status == MeterReportStatus.SENT


def test_the_backoff_is_evaluated_at_the_replayed_instant(live, monkeypatch):
    monkeypatch.setattr(stripe, "max_network_retries", 0)
    org = live.new_org()
    live.use(org, beyond("2"))
    rollup_usage()
    live.standin.fail_next("POST", "/v1/billing/meter_events", status=503)
    replayed = datetime.fromisoformat("2026-11-20T09:10:00+00:00")

    assert runjob(replayed.isoformat())["retry"] == 1

    report = MeterReport.objects.get()
    assert report.next_attempt_at == replayed + timedelta(seconds=30)  # the rules' clock
    assert (report.first_attempt_at, report.earliest_timestamp) == (NOW, NOW)  # the real one
    (attempt,) = live.standin.requests_to("POST", "/v1/billing/meter_events")
    assert attempt.params["timestamp"] == str(int(NOW.timestamp()))
