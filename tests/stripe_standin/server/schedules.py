"""Endpoints: subscription schedules (a downgrade at the period end is a two-phase schedule)."""

import copy

from tests.stripe_standin import objects
from tests.stripe_standin.server.forms import StripeError, _int, _merge_metadata, _missing


def schedule_phase(*, items: list[dict], start_date: int, end_date: int, currency: str = "usd") -> dict:
    return {
        "add_invoice_items": [],
        "application_fee_percent": None,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": None,
        "billing_thresholds": None,
        "collection_method": None,
        "currency": currency,
        "default_payment_method": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": [],
        "end_date": end_date,
        "invoice_settings": None,
        "items": items,
        "metadata": {},
        "on_behalf_of": None,
        "proration_behavior": "create_prorations",
        "start_date": start_date,
        "transfer_data": None,
        "trial_end": None,
    }


def phase_item(price: dict, quantity: int | None) -> dict:
    metered = (price.get("recurring") or {}).get("usage_type") == "metered"
    return {
        "billing_thresholds": None,
        "discounts": [],
        "metadata": {},
        "plan": price["id"],
        "price": price["id"],
        "quantity": None if metered else (quantity or 1),
        "tax_rates": [],
    }


def subscription_schedule(*, subscription: dict, created: int, phases: list[dict]) -> dict:
    return {
        "id": objects.new_id("sub_sched"),
        "object": "subscription_schedule",
        "application": None,
        "billing_mode": copy.deepcopy(subscription["billing_mode"]),
        "canceled_at": None,
        "completed_at": None,
        "created": created,
        "current_phase": {"end_date": phases[0]["end_date"], "start_date": phases[0]["start_date"]},
        "customer": subscription["customer"],
        "customer_account": None,
        "default_settings": {
            "application_fee_percent": None,
            "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
            "billing_cycle_anchor": "automatic",
            "billing_thresholds": None,
            "collection_method": "charge_automatically",
            "default_payment_method": None,
            "description": None,
            "invoice_settings": {"account_tax_ids": None, "days_until_due": None, "issuer": {"type": "self"}},
            "on_behalf_of": None,
            "transfer_data": None,
        },
        "end_behavior": "release",
        "livemode": False,
        "metadata": {},
        "phases": phases,
        "released_at": None,
        "released_subscription": None,
        "renewal_interval": None,
        "status": "active",
        "subscription": subscription["id"],
        "test_clock": None,
    }


class SchedulesMixin:
    """The subscription schedule endpoints, mixed into `StripeStandin` (core.py)."""

    def _create_schedule(self, params):
        from_id = params.get("from_subscription")
        if not from_id:
            raise _missing("from_subscription")
        sub = self._find(from_id, "subscription")
        if sub["schedule"]:
            raise StripeError(
                400,
                "You cannot migrate a subscription that is already attached to a schedule: "
                f"`{sub['schedule']}`.",
            )
        start, end = (
            sub["items"]["data"][0]["current_period_start"],
            sub["items"]["data"][0]["current_period_end"],
        )
        items = [phase_item(i["price"], i["quantity"]) for i in sub["items"]["data"]]
        obj = subscription_schedule(
            subscription=sub,
            created=self._now(),
            phases=[schedule_phase(items=items, start_date=start, end_date=end, currency=sub["currency"])],
        )
        sub["schedule"] = obj["id"]
        self._objects["subscription_schedule"][obj["id"]] = obj
        return self._render(obj, params.get("expand"))

    def _get_schedule(self, params, id):
        return self._retrieve("subscription_schedule", id, params)

    def _update_schedule(self, params, id):
        obj = self._find(id, "subscription_schedule")
        if obj["status"] not in ("active", "not_started"):
            raise StripeError(400, f"You cannot update a subscription schedule that is {obj['status']}.")
        if "phases" in params:
            obj["phases"] = self._read_phases(params["phases"], obj)
            obj["current_phase"] = {k: obj["phases"][0][k] for k in ("end_date", "start_date")}
        if "end_behavior" in params:
            if params["end_behavior"] not in ("release", "cancel"):
                raise StripeError(400, "Invalid end_behavior", param="end_behavior")
            obj["end_behavior"] = params["end_behavior"]
        if "metadata" in params:
            obj["metadata"] = _merge_metadata(obj["metadata"], params["metadata"])
        return self._render(obj, params.get("expand"))

    def _read_phases(self, phases, schedule) -> list[dict]:
        if not isinstance(phases, list) or not phases:
            raise _missing("phases")
        built, start = [], None
        for index, phase in enumerate(phases):
            start = _int(phase, "start_date", start)
            if start is None:
                raise _missing(f"phases[{index}][start_date]")
            end = _int(phase, "end_date")
            duration = phase.get("duration") or {}
            if end is None and duration:
                months = int(duration.get("interval_count", 1)) if duration.get("interval") == "month" else 0
                end = start + months * 30 * 24 * 3600 or None
            if end is None and _int(phase, "iterations") is not None:
                end = start + int(phase["iterations"]) * 30 * 24 * 3600
            if end is None:
                raise _missing(f"phases[{index}][end_date]")
            items = []
            for number, item in enumerate(phase.get("items") or []):
                if not item.get("price"):
                    raise _missing(f"phases[{index}][items][{number}][price]")
                price = self._find(item["price"], "price")
                items.append(phase_item(price, _int(item, "quantity")))
            if not items:
                raise _missing(f"phases[{index}][items]")
            built.append(schedule_phase(items=items, start_date=start, end_date=end))
            start = end
        return built

    def _release_schedule(self, params, id):
        obj = self._find(id, "subscription_schedule")
        if obj["status"] not in ("active", "not_started"):
            raise StripeError(
                400, f"You cannot release a subscription schedule that is currently {obj['status']}."
            )
        obj.update(
            status="released",
            released_at=self._now(),
            released_subscription=obj["subscription"],
            subscription=None,
            current_phase=None,
        )
        sub = self._objects["subscription"].get(obj["released_subscription"])
        if sub is not None:
            sub["schedule"] = None
        return self._render(obj, params.get("expand"))

    def _advance_schedule(self, sub: dict, end: int) -> bool:
        """At the period end: if the subscription's schedule has a phase starting then, its items
        replace the subscription's; after the last phase the schedule is released (end_behavior)."""
        schedule = self._objects["subscription_schedule"].get(sub["schedule"] or "")
        if schedule is None:
            return False
        following = [phase for phase in schedule["phases"] if phase["start_date"] >= end]
        if not following:
            return False
        phase = following[0]
        new_items = []
        for item in phase["items"]:
            price = copy.deepcopy(self._find(item["price"], "price"))
            new_items.append(
                objects.subscription_item(
                    subscription=sub["id"],
                    price=price,
                    quantity=item["quantity"] or 1,
                    current_period_start=phase["start_date"],
                    current_period_end=phase["end_date"],
                )
            )
        sub["items"]["data"] = new_items
        sub["items"]["total_count"] = len(new_items)
        schedule["current_phase"] = {"end_date": phase["end_date"], "start_date": phase["start_date"]}
        if phase is schedule["phases"][-1] and schedule["end_behavior"] == "release":
            # The last phase started: nothing is left to schedule (Stripe releases at its end; the
            # subscription then simply goes on on its items).
            pass
        return True


_SCHEDULE_CREATE_FIELDS = {"from_subscription", "metadata"}
_SCHEDULE_UPDATE_FIELDS = {"phases", "end_behavior", "metadata", "proration_behavior"}
