import contextlib
from datetime import timedelta
from decimal import Decimal as D

import pytest
import redis
import stripe

from billing.models import AllowanceClaim, ClaimStatus
from billing.services.catalog import load_catalog
from tests.concurrency import committing, run_concurrently
from tests.conftest import TEST_CATALOG
from tests.usage.conftest import NOW, beyond, sent_values
from usage.models import MeterReport, MeterReportStatus, UsageBucket
from usage.services import metering
from usage.services.metering import report_meter_usage
from usage.services.rollup import rollup_usage

pytestmark = committing


def report():
    rollup_usage()
    return report_meter_usage()


def test_it_sends_the_whole_credits_and_carries_the_fraction(live):
    org = live.new_org()
    live.use(org, beyond("2.5"))  # 2.5 beyond the allowance

    summary = report()

    assert (summary["written"], summary["sent"]) == (1, 1)
    (event,) = live.standin.meter_events
    assert event["event_name"] == "overage_credits"
    assert (event["payload"]["value"], event["identifier"]) == ("2", f"ovg-{org.public_id}-1")
    assert event["timestamp"] == int(NOW.timestamp())  # stamped when sent
    sent = MeterReport.objects.get()
    assert (sent.status, sent.value, sent.carried, sent.sent_at) == (MeterReportStatus.SENT, 2, D("0.5"), NOW)
    assert sent.buckets == list(UsageBucket.objects.filter(org=org).values_list("pk", flat=True))


def test_nothing_is_sent_below_a_whole_credit(live):
    org = live.new_org()
    live.use(org, beyond("0.9"))

    assert report()["written"] == 0
    assert not live.standin.meter_events


def test_a_crash_after_sending_does_not_bill_twice(live, monkeypatch):
    org = live.new_org()
    live.use(org, beyond("3"))
    real = metering._mark_sent

    def crash(*args, **kwargs):
        raise RuntimeError("the worker died here")

    monkeypatch.setattr(metering, "_mark_sent", crash)
    with pytest.raises(RuntimeError):
        report()
    pending = MeterReport.objects.get()
    assert (pending.status, pending.value) == (MeterReportStatus.PENDING, 3)  # written before the send
    monkeypatch.setattr(metering, "_mark_sent", real)

    report()

    attempts = live.standin.requests_to("POST", "/v1/billing/meter_events")
    assert [(a.params["identifier"], a.params["payload"]["value"]) for a in attempts] == [
        (pending.identifier, "3")
    ] * 2
    assert sent_values(live.standin, org) == [3]
    assert MeterReport.objects.get().status == MeterReportStatus.SENT


def test_a_lost_answer_is_resent_with_the_same_identifier_and_value(live, monkeypatch):
    monkeypatch.setattr(stripe, "max_network_retries", 0)
    org = live.new_org()
    live.use(org, beyond("4"))
    live.standin.fail_next("POST", "/v1/billing/meter_events", status=500, after=True)

    assert report()["retry"] == 1
    assert report_meter_usage()["sent"] == 0  # backing off
    live.clock.shift(timedelta(minutes=1))
    retried = report_meter_usage()
    assert retried["sent"] == 1, retried

    assert sent_values(live.standin, org) == [4]
    attempts = live.standin.requests_to("POST", "/v1/billing/meter_events")
    assert {(a.params["identifier"], a.params["payload"]["value"]) for a in attempts} == {
        (f"ovg-{org.public_id}-1", "4")
    }
    assert attempts[1].params["timestamp"] != attempts[0].params["timestamp"]  # stamped when sent
    assert MeterReport.objects.get().last_error == "Stripe already had this identifier."


def test_a_late_event_produces_exactly_one_further_report(live):
    org = live.new_org()
    live.use(org, beyond("2"))
    report()

    live.use(org, "3", at="2026-11-20T12:15:00Z")  # late: an hour already reported
    report()
    report()

    assert sent_values(live.standin, org) == [2, 3]
    assert MeterReport.objects.filter(org=org).count() == 2


def test_a_report_lists_the_buckets_changed_since_the_previous_one(live):
    org = live.new_org()
    live.use(org, beyond("2"), at="2026-11-20T13:00:00Z")
    report()
    live.clock.shift(timedelta(minutes=5))
    live.use(org, "3", at="2026-11-20T14:00:00Z")

    report()

    first, second = MeterReport.objects.filter(org=org).order_by("sequence")
    hours = dict(UsageBucket.objects.filter(org=org).values_list("pk", "hour"))
    assert [hours[pk].hour for pk in first.buckets] == [13]
    assert [hours[pk].hour for pk in second.buckets] == [14]  # the rollup and the reports share a clock


def test_fractions_add_up_over_many_reports(live):
    org = live.new_org()
    live.use(org, beyond("0"))
    for _ in range(10):
        live.use(org, "0.3")
        report()

    assert sum(sent_values(live.standin, org)) == 3  # 10 × 0.3
    last = MeterReport.objects.filter(org=org).order_by("-sequence").first()
    assert last.carried == D(0)
    assert [r.value for r in MeterReport.objects.filter(org=org).order_by("sequence")] == [1, 1, 1]


def test_shadow_mode_sends_nothing_and_counts_nothing_as_sent(live, settings):
    settings.BILLING_SHADOW_MODE = True
    org = live.new_org()
    live.use(org, beyond("5"))

    shadow = report()

    assert (shadow["shadow"], shadow["written"]) == (True, 1)
    assert MeterReport.objects.get().status == MeterReportStatus.SHADOW
    assert not live.standin.requests_to("POST", "/v1/billing/meter_events")

    settings.BILLING_SHADOW_MODE = False
    billed = report()

    assert (billed["written"], billed["sent"]) == (1, 1)
    assert sent_values(live.standin, org) == [5]  # all of it: the shadow report counted for nothing


def test_the_bill_from_boundary_is_respected_per_product(live):
    catalog = {**TEST_CATALOG, "products": {**TEST_CATALOG["products"]}}
    catalog["products"]["red"] = {**catalog["products"]["red"], "bill_from": "2026-11-20T14:00:00Z"}
    load_catalog(catalog)
    org = live.new_org()
    live.use(org, beyond("0"), at="2026-11-20T14:10:00Z")  # uses up the credits
    live.use(org, "7", at="2026-11-20T13:59:59Z")  # red, before red's own bill-from: never billed
    live.use(org, "2", at="2026-11-20T14:00:00Z")  # red, from red's bill-from on
    blue = live.red.__class__.objects.get(slug="blue")
    live.use(org, "3", at="2026-11-20T12:00:00Z", product=blue, metric="build_minute")  # blue: the global one
    live.use(org, "4", at="2026-11-20T11:59:00Z", product=blue, metric="build_minute")  # blue, before

    report()

    assert sent_values(live.standin, org) == [5]


def test_without_redis_it_refuses_to_send(live, settings):
    settings.REDIS_URL = None
    org = live.new_org()
    live.use(org, beyond("3"))

    summary = report()

    assert "Redis is required" in summary["refused"]
    assert not MeterReport.objects.exists() and not live.standin.meter_events


def test_an_unsent_report_older_than_23_hours_is_reconciled_not_resent(live, monkeypatch):
    monkeypatch.setattr(stripe, "max_network_retries", 0)
    org = live.new_org()
    live.use(org, beyond("6"))
    live.standin.fail_next("POST", "/v1/billing/meter_events", status=500, after=True)  # it did arrive
    report()
    live.clock.shift(timedelta(hours=23, minutes=1))

    summary = report_meter_usage()

    assert (summary["sent"], summary["retry"]) == (1, 0)
    assert len(live.standin.requests_to("POST", "/v1/billing/meter_events")) == 1
    reconciled = MeterReport.objects.get()
    assert (reconciled.status, reconciled.last_error) == (
        MeterReportStatus.SENT,
        "Reconciled: Stripe counts 6.",
    )
    assert live.standin.requests_to("GET", "/v1/billing/meters/")


def test_a_report_stripe_never_got_is_abandoned_and_its_credits_reported_anew(live, monkeypatch):
    monkeypatch.setattr(stripe, "max_network_retries", 0)
    org = live.new_org()
    live.use(org, beyond("7"))
    live.standin.fail_next("POST", "/v1/billing/meter_events", status=503)
    report()
    live.clock.shift(timedelta(hours=23, minutes=1))

    first = report_meter_usage()  # reconciles: Stripe counts nothing
    second = report_meter_usage()  # reports the same credits under a new identifier

    assert (first["abandoned"], second["written"], second["sent"]) == (1, 1, 1)
    assert [(r.sequence, r.status) for r in MeterReport.objects.order_by("sequence")] == [
        (1, MeterReportStatus.ABANDONED),
        (2, MeterReportStatus.SENT),
    ]
    assert sent_values(live.standin, org) == [7]


def test_rate_limits_and_outages_are_retried_later(live, monkeypatch):
    monkeypatch.setattr(stripe, "max_network_retries", 0)
    org = live.new_org()
    live.use(org, beyond("2"))
    live.standin.fail_next("POST", "/v1/billing/meter_events", status=429)

    assert report()["retry"] == 1
    pending = MeterReport.objects.get()
    assert pending.next_attempt_at == NOW + timedelta(seconds=30) and "rate" in pending.last_error.lower()

    live.clock.shift(timedelta(seconds=31))
    assert report_meter_usage()["sent"] == 1
    assert sent_values(live.standin, org) == [2]


def test_a_refusal_is_kept_for_staff_and_not_resent(live):
    org = live.new_org()
    live.use(org, beyond("2"))
    body = {"error": {"type": "invalid_request_error", "message": "No such customer: 'cus_x'"}}
    live.standin.fail_next("POST", "/v1/billing/meter_events", status=400, body=body)

    assert report()["failed"] == 1
    live.use(org, "3")
    report()

    assert [(r.value, r.status) for r in MeterReport.objects.order_by("sequence")] == [
        (2, MeterReportStatus.FAILED),
        (3, MeterReportStatus.SENT),
    ]


def test_an_org_whose_allowance_claim_failed_is_left_out_of_the_run(live):
    org = live.new_org()
    live.use(org, beyond("2"))
    AllowanceClaim.objects.filter(org=org, month=NOW.date().replace(day=1), plan__name="pro").update(
        status=ClaimStatus.FAILED
    )

    summary = report()

    assert summary["left_out"] == [org.public_id] and not live.standin.meter_events


def test_two_reporters_at_once_send_each_credit_once(live):
    orgs = [live.new_org() for _ in range(4)]
    for n, org in enumerate(orgs):
        live.use(org, beyond(str(n + 1)))
    rollup_usage()

    results = run_concurrently(lambda _: report_meter_usage(), 4)

    assert sum(r.get("sent", 0) for r in results) == 4
    assert any("refused" in r for r in results)  # the lock kept the others out
    assert sorted(sent_values(live.standin)) == [1, 2, 3, 4]


def test_row_locks_alone_still_send_each_credit_once(live, monkeypatch):
    # As if two reporters both believed they held the lock.
    monkeypatch.setattr(metering, "reporter_lock", lambda shadow: contextlib.nullcontext())
    orgs = [live.new_org() for _ in range(4)]
    for n, org in enumerate(orgs):
        live.use(org, beyond(str(n + 1)))
    rollup_usage()

    run_concurrently(lambda _: report_meter_usage(), 4)

    assert sorted(sent_values(live.standin)) == [1, 2, 3, 4]
    assert MeterReport.objects.count() == 4


def test_a_long_run_renews_its_lock_and_stops_once_it_has_lost_it(live, settings):
    from usage.services import reporter_lock as module

    client = redis.Redis.from_url(settings.REDIS_URL)
    with module.reporter_lock(shadow=False) as held:
        client.pexpire(module.LOCK_KEY, 5000)
        held.renewed -= module.LOCK_TTL_SECONDS  # as if a third of its life had passed
        held.renew()
        assert client.pttl(module.LOCK_KEY) > 5000

        client.delete(module.LOCK_KEY)  # it expired and another reporter may have it
        held.renewed -= module.LOCK_TTL_SECONDS
        with pytest.raises(module.ReporterBusy, match="expired"):
            held.renew()
