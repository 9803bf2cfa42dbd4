"""Endpoints: billing meters, meter events, meter event summaries."""

import copy
import re
import uuid
from decimal import Decimal

from tests.stripe_standin import objects
from tests.stripe_standin.server.forms import StripeError, _dict, _int, _missing

_METER_EVENT_PAST = 35 * 24 * 3600
_METER_EVENT_FUTURE = 5 * 60
_IDENTIFIER_WINDOW = 24 * 3600


class MetersMixin:
    """The billing meter and meter event endpoints, mixed into `StripeStandin` (core.py)."""

    # billing meters

    def _create_meter(self, params):
        for name in ("display_name", "event_name"):
            if not params.get(name):
                raise _missing(name)
        aggregation = _dict(params, "default_aggregation")
        formula = aggregation.get("formula")
        if not formula:
            raise _missing("default_aggregation[formula]")
        if formula not in ("sum", "count", "last"):
            raise StripeError(
                400, f"Invalid default_aggregation[formula]: {formula}", param="default_aggregation[formula]"
            )
        event_name = params["event_name"]
        for other in self._objects["billing.meter"].values():
            if other["event_name"] == event_name and other["status"] == "active":
                raise StripeError(
                    400, f"An active meter with event_name `{event_name}` already exists.", param="event_name"
                )
        obj = objects.meter(
            event_name=event_name,
            display_name=params["display_name"],
            formula=formula,
            customer_payload_key=_dict(params, "customer_mapping").get(
                "event_payload_key", "stripe_customer_id"
            ),
            value_payload_key=_dict(params, "value_settings").get("event_payload_key", "value"),
            event_time_window=params.get("event_time_window"),
            created=self._now(),
        )
        self._objects["billing.meter"][obj["id"]] = obj
        return self._render(obj, params.get("expand"))

    def _list_meters(self, params):
        status = params.get("status")
        return self._list(
            "billing.meter", params, "/v1/billing/meters", lambda m: status is None or m["status"] == status
        )

    def _get_meter(self, params, id):
        return self._retrieve("billing.meter", id, params)

    def _update_meter(self, params, id):
        obj = self._find(id, "billing.meter")
        if "display_name" in params:
            obj["display_name"] = params["display_name"]
            obj["updated"] = self._now()
        return self._render(obj)

    def _deactivate_meter(self, params, id):
        obj = self._find(id, "billing.meter")
        obj.update(status="inactive", status_transitions={"deactivated_at": self._now()}, updated=self._now())
        return self._render(obj)

    def _reactivate_meter(self, params, id):
        obj = self._find(id, "billing.meter")
        obj.update(status="active", status_transitions={"deactivated_at": None}, updated=self._now())
        return self._render(obj)

    # meter events

    def _create_meter_event(self, params):
        event_name = params.get("event_name")
        if not event_name:
            raise _missing("event_name")
        payload = params.get("payload")
        if not isinstance(payload, dict) or not payload:
            raise _missing("payload")
        now = self._now()
        meter = next(
            (m for m in self._objects["billing.meter"].values() if m["event_name"] == event_name), None
        )
        customer_key = meter["customer_mapping"]["event_payload_key"] if meter else "stripe_customer_id"
        value_key = meter["value_settings"]["event_payload_key"] if meter else "value"
        if not payload.get(customer_key):
            raise StripeError(
                400,
                f"Missing required param: payload[{customer_key}].",
                code="parameter_missing",
                param=f"payload[{customer_key}]",
            )
        if value_key not in payload:
            raise StripeError(
                400,
                f"Missing required param: payload[{value_key}].",
                code="parameter_missing",
                param=f"payload[{value_key}]",
            )
        value = payload[value_key]
        if not re.fullmatch(r"-?\d{1,15}", value):
            raise StripeError(
                400,
                f"The value in the event payload must be a whole number. Received `{value}`.",
                code="meter_event_invalid_value",
                param=f"payload[{value_key}]",
            )
        timestamp = _int(params, "timestamp", now)
        if timestamp < now - _METER_EVENT_PAST:
            raise StripeError(
                400,
                "Timestamp must be within the past 35 calendar days.",
                code="timestamp_too_far_in_past",
                param="timestamp",
            )
        if timestamp > now + _METER_EVENT_FUTURE:
            raise StripeError(
                400,
                "Timestamp must be no more than 5 minutes in the future.",
                code="timestamp_in_future",
                param="timestamp",
            )
        identifier = params.get("identifier") or str(uuid.uuid4())
        seen = self._identifiers.get(identifier)
        if seen is not None and now - seen < _IDENTIFIER_WINDOW:
            # What Stripe answers (observed; the docs only say uniqueness is enforced): a 400
            # invalid_request_error with this message and no `code`. See README.md.
            raise StripeError(400, f"An event already exists with identifier {identifier}.")
        self._identifiers[identifier] = now
        obj = objects.meter_event(
            event_name=event_name, payload=payload, identifier=identifier, timestamp=timestamp, created=now
        )
        # Stripe validates the event name and the customer asynchronously: the event is accepted and a
        # meter error report follows. The stand-in records the report and leaves the event unbilled.
        if meter is None or meter["status"] != "active":
            code = "no_meter" if meter is None else "archived_meter"
            self.meter_event_errors.append({"code": code, "event": copy.deepcopy(obj)})
        elif payload[customer_key] not in self._objects["customer"]:
            self.meter_event_errors.append(
                {"code": "meter_event_customer_not_found", "event": copy.deepcopy(obj)}
            )
        else:
            self._meter_events.append(obj)
        return copy.deepcopy(obj)

    def _meter_event_summaries(self, params, id):
        meter = self._find(id, "billing.meter")
        customer = params.get("customer")
        if not customer:
            raise _missing("customer")
        start, end = _int(params, "start_time"), _int(params, "end_time")
        if start is None:
            raise _missing("start_time")
        if end is None:
            raise _missing("end_time")
        for name, value in (("start_time", start), ("end_time", end)):
            if value % 60:
                raise StripeError(400, f"{name} must be aligned with minute boundaries.", param=name)
        if end <= start:
            raise StripeError(400, "end_time must be after start_time.", param="end_time")
        window = params.get("value_grouping_window")
        if window not in (None, "hour", "day"):
            raise StripeError(400, f"Invalid value_grouping_window: {window}", param="value_grouping_window")
        horizon = self._now() - self.summary_delay
        customer_key = meter["customer_mapping"]["event_payload_key"]
        value_key = meter["value_settings"]["event_payload_key"]
        events = [
            e
            for e in self._meter_events
            if e["event_name"] == meter["event_name"]
            and e["payload"].get(customer_key) == customer
            and start <= e["timestamp"] < end
            and e["created"] <= horizon
        ]
        if window is None:
            windows = [(start, end)]
        else:
            size = 3600 if window == "hour" else 86400
            bounds = sorted(
                {max(start, e["timestamp"] - e["timestamp"] % size) for e in events}, reverse=True
            )
            windows = [(b, min(b - b % size + size, end)) for b in bounds]
        summaries = []
        for window_start, window_end in windows:
            inside = [e for e in events if window_start <= e["timestamp"] < window_end]
            summaries.append(
                objects.meter_event_summary(
                    meter=id,
                    customer=customer,
                    start_time=window_start,
                    end_time=window_end,
                    aggregated_value=_aggregate(meter["default_aggregation"]["formula"], inside, value_key),
                )
            )
        return self._list(summaries, params, f"/v1/billing/meters/{id}/event_summaries", newest_first=False)


# The parameters these endpoints model (routes.py refuses any other with `parameter_unknown`).
_METER_FIELDS = {
    "customer_mapping", "default_aggregation", "display_name", "event_name", "event_time_window",
    "value_settings",
}  # fmt: skip
_METER_EVENT_FIELDS = {"event_name", "identifier", "payload", "timestamp"}


def _aggregate(formula: str, events: list[dict], value_key: str) -> float:
    if formula == "count":
        return len(events)
    values = [
        Decimal(e["payload"][value_key]) for e in sorted(events, key=lambda e: (e["timestamp"], e["created"]))
    ]
    if formula == "last":
        return float(values[-1]) if values else 0
    return float(sum(values, Decimal(0)))
