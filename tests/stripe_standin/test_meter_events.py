"""Meter events and meter event summaries: Stripe's documented rules, as the stand-in enforces them."""

from datetime import UTC, datetime

import pytest
import stripe

HOUR = 3600
NOW = datetime(2026, 7, 15, 10, 30, tzinfo=UTC)
NOW_TS = int(NOW.timestamp())
TOP_OF_HOUR = NOW_TS - NOW_TS % HOUR


@pytest.fixture
def meter(stripe_standin, time_machine):
    time_machine.move_to(NOW, tick=False)
    return stripe_standin.add_meter(event_name="overage_credits")


@pytest.fixture
def customer(stripe_standin):
    return stripe_standin.add_customer(email="billing@acme.example")


def send(customer, value="5", **fields):
    return stripe.billing.MeterEvent.create(
        event_name="overage_credits", payload={"stripe_customer_id": customer["id"], "value": value}, **fields
    )


def summaries(meter, customer, start, end, **fields):
    return stripe.billing.Meter.list_event_summaries(
        meter["id"], customer=customer["id"], start_time=start, end_time=end, **fields
    )


# --- meter events -------------------------------------------------------------------------------


def test_it_accepts_a_meter_event(stripe_standin, meter, customer):
    event = send(customer, "37", identifier="ovr-org_1-2026071510", timestamp=NOW_TS - 60)

    assert event.to_dict() == {
        "object": "billing.meter_event",
        "created": NOW_TS,
        "event_name": "overage_credits",
        "identifier": "ovr-org_1-2026071510",
        "livemode": False,
        "payload": {"stripe_customer_id": customer["id"], "value": "37"},
        "timestamp": NOW_TS - 60,
    }
    assert stripe_standin.meter_events == [event.to_dict()]


def test_it_generates_an_identifier_and_a_timestamp_when_none_is_sent(meter, customer):
    event = send(customer)

    assert event.identifier
    assert event.timestamp == NOW_TS


def test_it_refuses_a_duplicate_identifier_like_stripe(stripe_standin, meter, customer):
    send(customer, "5", identifier="report-1")

    with pytest.raises(stripe.InvalidRequestError) as caught:
        send(customer, "5", identifier="report-1")

    assert caught.value.http_status == 400
    assert caught.value.json_body == {
        "error": {
            "type": "invalid_request_error",
            "message": "An event already exists with identifier report-1.",
        }
    }
    assert caught.value.code is None  # Stripe sends no code: match the message
    assert len(stripe_standin.meter_events) == 1


def test_a_retry_with_the_same_idempotency_key_replays_instead(stripe_standin, meter, customer):
    first = send(customer, "5", identifier="report-1", idempotency_key="send-report-1")

    again = send(customer, "5", identifier="report-1", idempotency_key="send-report-1")

    assert again.to_dict() == first.to_dict()
    assert len(stripe_standin.meter_events) == 1
    assert stripe_standin.requests[-1].replayed is True


def test_an_identifier_is_unique_for_24_hours_only(stripe_standin, meter, customer, time_machine):
    send(customer, "5", identifier="report-1")
    time_machine.move_to(NOW_TS + 24 * HOUR - 1, tick=False)
    with pytest.raises(stripe.InvalidRequestError):
        send(customer, "5", identifier="report-1")

    time_machine.move_to(NOW_TS + 24 * HOUR, tick=False)
    send(customer, "5", identifier="report-1")

    assert [e["identifier"] for e in stripe_standin.meter_events] == ["report-1", "report-1"]


@pytest.mark.parametrize("value", ["2.5", "1e3", "abc", "", "1234567890123456"])
def test_it_refuses_a_value_that_is_not_a_whole_number(stripe_standin, meter, customer, value):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        send(customer, value)

    assert caught.value.code == "meter_event_invalid_value"
    assert caught.value.param == "payload[value]"
    assert stripe_standin.meter_events == []


def test_it_accepts_a_timestamp_35_days_back_and_5_minutes_ahead(stripe_standin, meter, customer):
    send(customer, identifier="oldest", timestamp=NOW_TS - 35 * 24 * HOUR)
    send(customer, identifier="newest", timestamp=NOW_TS + 5 * 60)

    assert [e["identifier"] for e in stripe_standin.meter_events] == ["oldest", "newest"]


def test_it_refuses_a_timestamp_older_than_35_days(meter, customer):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        send(customer, timestamp=NOW_TS - 35 * 24 * HOUR - 1)

    assert (caught.value.code, caught.value.param) == ("timestamp_too_far_in_past", "timestamp")


def test_it_refuses_a_timestamp_more_than_5_minutes_ahead(meter, customer):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        send(customer, timestamp=NOW_TS + 5 * 60 + 1)

    assert (caught.value.code, caught.value.param) == ("timestamp_in_future", "timestamp")


def test_it_needs_the_customer_and_the_value_in_the_payload(meter, customer):
    with pytest.raises(stripe.InvalidRequestError) as no_value:
        stripe.billing.MeterEvent.create(
            event_name="overage_credits", payload={"stripe_customer_id": customer["id"]}
        )
    with pytest.raises(stripe.InvalidRequestError) as no_customer:
        stripe.billing.MeterEvent.create(event_name="overage_credits", payload={"value": "1"})

    assert no_value.value.param == "payload[value]"
    assert no_customer.value.param == "payload[stripe_customer_id]"


def test_an_unknown_customer_or_meter_is_accepted_then_reported_not_billed(stripe_standin, meter, customer):
    # Stripe checks these asynchronously and reports them as meter errors.
    stripe.billing.MeterEvent.create(
        event_name="overage_credits", payload={"stripe_customer_id": "cus_Unknown0000000", "value": "1"}
    )
    stripe.billing.MeterEvent.create(
        event_name="no_such_meter", payload={"stripe_customer_id": customer["id"], "value": "1"}
    )

    assert [e["code"] for e in stripe_standin.meter_event_errors] == [
        "meter_event_customer_not_found",
        "no_meter",
    ]
    assert stripe_standin.meter_events == []


# --- summaries ------------------------------------------------------------------------------------


def test_a_summary_sums_the_customers_events_in_start_inclusive_end_exclusive(
    stripe_standin, meter, customer, time_machine
):
    other = stripe_standin.add_customer()
    send(customer, "3", timestamp=TOP_OF_HOUR - 1)  # before
    send(customer, "5", timestamp=TOP_OF_HOUR)  # first second: in
    send(customer, "7", timestamp=TOP_OF_HOUR + 1799)  # in
    send(other, "100", timestamp=TOP_OF_HOUR + 10)  # another customer
    time_machine.move_to(TOP_OF_HOUR + HOUR + 60, tick=False)
    send(customer, "11", timestamp=TOP_OF_HOUR + HOUR)  # end is exclusive

    (summary,) = summaries(meter, customer, TOP_OF_HOUR, TOP_OF_HOUR + HOUR).data

    assert summary.aggregated_value == 12
    assert (summary.start_time, summary.end_time, summary.meter) == (
        TOP_OF_HOUR,
        TOP_OF_HOUR + HOUR,
        meter["id"],
    )
    assert summary.id.startswith("mtrusg_test_")


def test_a_summary_without_events_is_zero(meter, customer):
    (summary,) = summaries(meter, customer, TOP_OF_HOUR - HOUR, TOP_OF_HOUR).data

    assert summary.aggregated_value == 0


def test_hourly_summaries_come_newest_first_and_page(stripe_standin, meter, customer, time_machine):
    day_start = TOP_OF_HOUR - 10 * HOUR
    time_machine.move_to(day_start + 15 * HOUR, tick=False)
    for hour in range(12):
        send(customer, str(hour + 1), identifier=f"h{hour}", timestamp=day_start + hour * HOUR + 30)

    first = summaries(
        meter, customer, day_start, day_start + 12 * HOUR, value_grouping_window="hour", limit=5
    )
    every = list(
        summaries(
            meter, customer, day_start, day_start + 12 * HOUR, value_grouping_window="hour"
        ).auto_paging_iter()
    )

    assert [s.aggregated_value for s in first.data] == [12, 11, 10, 9, 8]
    assert first.has_more is True
    assert [s.start_time for s in every] == [day_start + h * HOUR for h in reversed(range(12))]
    assert all(s.end_time - s.start_time == HOUR for s in every)


def test_start_and_end_must_be_on_minute_boundaries(meter, customer):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        summaries(meter, customer, TOP_OF_HOUR + 30, TOP_OF_HOUR + HOUR)

    assert caught.value.param == "start_time"


def test_summary_delay_leaves_fresh_events_out(stripe_standin, meter, customer, time_machine):
    stripe_standin.summary_delay = 120
    send(customer, "5", timestamp=TOP_OF_HOUR)

    fresh = summaries(meter, customer, TOP_OF_HOUR, TOP_OF_HOUR + HOUR).data[0].aggregated_value
    time_machine.move_to(NOW_TS + 121, tick=False)
    later = summaries(meter, customer, TOP_OF_HOUR, TOP_OF_HOUR + HOUR).data[0].aggregated_value

    assert (fresh, later) == (0, 5)
