"""A period's invoice opens as a draft (`invoice.created`): its last hour's overage is billed on it."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
import stripe
import time_machine

from billing.models import Plan
from billing.services.payments import customer_id_for
from billingsite import celery_app
from tests.concurrency import committing
from tests.usage.conftest import beyond, sent_values
from usage.models import MeterReport, MeterReportStatus
from usage.services import metering
from usage.services.metering import report_meter_usage
from usage.services.rollup import rollup_usage

pytestmark = committing

PERIOD_END = datetime(2026, 11, 20, 15, 20, tzinfo=UTC)
METER_EVENTS = "/v1/billing/meter_events"


@pytest.fixture(autouse=True)
def _retries_run_like_a_worker():
    # In process, a task's retry runs at once instead of being raised to the caller, as a worker
    # would run it later (the retry's countdown is skipped).
    saved = celery_app.conf.task_eager_propagates
    celery_app.conf.task_eager_propagates = False
    yield
    celery_app.conf.task_eager_propagates = saved


def at(text: str) -> datetime:
    return datetime.fromisoformat(f"2026-11-20T{text}+00:00")


@pytest.fixture
def period(live, post_webhook):
    """An org on pro whose subscription's period ends at PERIOD_END; `close()` opens its invoice
    and delivers `invoice.created`, returning the event."""
    org = live.new_org()
    pro = Plan.objects.get(name="pro")
    subscription = live.standin.add_subscription(
        customer_id_for(org),
        items=[pro.stripe_price_id, pro.stripe_overage_price_id],
        current_period_start=int((PERIOD_END - timedelta(days=30)).timestamp()),
        current_period_end=int(PERIOD_END.timestamp()),
    )

    def close(*, finalized_first: bool = False):
        invoice = live.standin.close_period(subscription["id"])
        event = live.standin.event("invoice.created", invoice["id"])
        if finalized_first:  # Stripe finalized it before the delivery was processed
            live.standin.update(invoice["id"], status="open", automatically_finalizes_at=None)
        response = post_webhook(event)
        assert response.status_code == 200, response.content
        return event

    def use_at(when: str, credits: str):
        live.clock.move_to(at(when))
        live.use(org, credits, at=at(when).isoformat())

    return type("Period", (), {"org": org, "close": staticmethod(close), "use": staticmethod(use_at)})


def last_hour(period) -> None:
    period.use("12:30:00", beyond("2"))  # 2 overage credits, reported by the 13:10 run
    live_run("13:10:00")
    period.use("14:30:00", "2.5")
    period.use("15:10:00", "1.75")
    period.use("15:19:59", "0.5")  # the last hour: 4.75 credits
    period.use("15:25:00", "3")  # after the period's end: the next period's


def live_run(when: str) -> dict:
    with time_machine.travel(at(when), tick=False):
        rollup_usage()
        return report_meter_usage()


def test_the_last_hour_is_reported_at_once_stamped_inside_the_period(live, period):
    last_hour(period)
    live.clock.move_to(at("15:27:00"))  # Stripe opens the invoice a few minutes after the period ends

    event = period.close()

    events = live.standin.meter_events
    assert [(int(e["payload"]["value"]), e["timestamp"]) for e in events] == [
        (2, int(at("13:10:00").timestamp())),
        (4, int(PERIOD_END.timestamp()) - 1),  # the whole credits of the last hour, inside the period
    ]
    closing = MeterReport.objects.get(sequence=2)
    assert (closing.invoice_id, closing.carried, closing.status) == (
        event["data"]["object"]["id"],
        D("0.75"),
        MeterReportStatus.SENT,
    )

    live_run("16:10:00")  # the hourly run: the fraction and the usage after the period end

    assert sent_values(live.standin, period.org) == [2, 4, 3]
    assert live.standin.meter_events[-1]["timestamp"] == int(at("16:10:00").timestamp())


def test_a_duplicate_or_a_second_delivery_sends_nothing_more(live, period, post_webhook):
    last_hour(period)
    live.clock.move_to(at("15:27:00"))
    event = period.close()

    assert post_webhook(event).status_code == 200  # the same event again: dj-stripe stops there
    again = live.standin.event("invoice.created", event["data"]["object"]["id"])
    assert post_webhook(again).status_code == 200  # another delivery about the same invoice

    assert sent_values(live.standin, period.org) == [2, 4]
    assert MeterReport.objects.filter(org=period.org).count() == 2


def test_stripe_unavailable_then_a_retry_sends_it_once(live, period, monkeypatch):
    monkeypatch.setattr(stripe, "max_network_retries", 0)
    last_hour(period)
    live.clock.move_to(at("15:27:00"))
    live.standin.fail_next("POST", METER_EVENTS, status=503)

    period.close()  # the task's first attempt meets the 503; its retry sends

    attempts = live.standin.requests_to("POST", METER_EVENTS)[1:]  # after the 13:10 report
    closing = MeterReport.objects.get(sequence=2)
    assert [(a.status, a.params["identifier"], a.params["payload"]["value"]) for a in attempts] == [
        (503, closing.identifier, "4"),
        (200, closing.identifier, "4"),
    ]
    assert {a.params["timestamp"] for a in attempts} == {str(int(PERIOD_END.timestamp()) - 1)}
    assert sent_values(live.standin, period.org) == [2, 4]


def test_a_busy_reporter_lock_is_waited_for(live, period, monkeypatch):
    last_hour(period)
    live.clock.move_to(at("15:27:00"))
    real, refusals = metering.reporter_lock, []

    def busy_once(*, shadow):
        if not refusals:
            refusals.append(shadow)
            raise metering.ReporterBusy("Another reporter holds the lock.")
        return real(shadow=shadow)

    monkeypatch.setattr(metering, "reporter_lock", busy_once)

    period.close()

    assert refusals == [False]
    assert sent_values(live.standin, period.org) == [2, 4]


def test_an_unsent_report_of_the_period_goes_first_stamped_inside_it(live, period, monkeypatch):
    monkeypatch.setattr(stripe, "max_network_retries", 0)
    period.use("14:30:00", beyond("3"))
    live.standin.fail_next("POST", METER_EVENTS, status=503)
    assert live_run("15:10:00")["retry"] == 1  # 3 credits, waiting to be retried
    period.use("15:15:00", "2")
    live.clock.move_to(at("15:27:00"))

    period.close()

    events = live.standin.meter_events
    assert [(int(e["payload"]["value"]), e["timestamp"]) for e in events] == [
        (3, int(PERIOD_END.timestamp()) - 1),
        (2, int(PERIOD_END.timestamp()) - 1),
    ]


def test_shadow_mode_records_the_period_close_and_sends_nothing(live, period, settings):
    settings.BILLING_SHADOW_MODE = True
    period.use("15:10:00", beyond("4"))
    live.clock.move_to(at("15:27:00"))

    period.close()

    report = MeterReport.objects.get()
    assert (report.status, report.value, report.stamp_at) == (
        MeterReportStatus.SHADOW,
        4,
        PERIOD_END - timedelta(seconds=1),
    )
    assert not live.standin.requests_to("POST", METER_EVENTS)


def test_usage_before_the_bill_from_instant_is_not_billed_at_the_close(live, period, settings):
    settings.BILLING_BILL_FROM = at("15:00:00")
    period.use("14:50:00", beyond("4"))  # before bill-from: consumed, never billed
    period.use("15:05:00", "2")
    live.clock.move_to(at("15:27:00"))

    period.close()

    assert sent_values(live.standin, period.org) == [2]


def test_an_invoice_finalized_before_its_delivery_is_processed_closes_nothing(live, period):
    period.use("15:10:00", beyond("4"))
    live.clock.move_to(at("15:27:00"))

    period.close(finalized_first=True)  # dj-stripe re-reads it: no longer a draft

    assert not live.standin.requests_to("POST", METER_EVENTS)
    assert not MeterReport.objects.exists()  # the hourly run reports it, stamped when sent


def test_the_close_waits_for_usage_a_long_transaction_keeps_from_the_rollup(live, period):
    from tests.usage.test_rollup_lag import long_transaction
    from usage.services.period_close import PeriodNotReady, report_period_overage

    close = {
        "org_id": period.org.pk,
        "invoice_id": "in_test",
        "period_end": PERIOD_END,
        "draft_until": at("16:27:00"),
    }
    with long_transaction():
        period.use("15:10:00", beyond("4"))  # committed, but younger than the open transaction
        live.clock.move_to(at("15:27:00"))
        with pytest.raises(PeriodNotReady):
            report_period_overage(**close)
        assert not MeterReport.objects.exists()

    assert report_period_overage(**close)["sent"] == 1
    assert sent_values(live.standin, period.org) == [4]
    assert report_period_overage(**close)["written"] == 0  # called again: nothing more
