"""Endpoints: subscriptions, subscription items."""

import copy

from tests.stripe_standin import objects
from tests.stripe_standin.server.forms import StripeError, _bool, _dict, _merge_metadata, _missing, _nullable

_SUBSCRIPTION_STATUSES = {
    "active", "canceled", "incomplete", "incomplete_expired", "past_due", "paused", "trialing", "unpaid",
}  # fmt: skip


class SubscriptionsMixin:
    """The subscription endpoints, mixed into `StripeStandin` (core.py)."""

    # subscriptions

    def _get_subscription(self, params, id):
        return self._retrieve("subscription", id, params)

    def _list_subscriptions(self, params):
        customer = params.get("customer")
        status = params.get("status")
        price = params.get("price")
        if status is not None and status not in _SUBSCRIPTION_STATUSES | {"all", "ended"}:
            raise StripeError(400, f"Invalid status: {status}", param="status")

        def keep(s):
            if customer is not None and s["customer"] != customer:
                return False
            if price is not None and all(i["price"]["id"] != price for i in s["items"]["data"]):
                return False
            if status is None:
                return s["status"] != "canceled"  # Stripe leaves canceled ones out unless asked
            if status == "ended":
                return s["status"] in ("canceled", "incomplete_expired")
            return status == "all" or s["status"] == status

        return self._list("subscription", params, "/v1/subscriptions", keep)

    def _update_subscription(self, params, id):
        obj = self._find(id, "subscription")
        if obj["status"] in ("canceled", "incomplete_expired") and set(params) - {
            "metadata",
            "cancellation_details",
            "expand",
        }:
            raise StripeError(
                400, "A canceled subscription can only update its cancellation_details and metadata."
            )
        if "items" in params:
            self._update_items(obj, params)
        if "cancel_at_period_end" in params:
            cancel = _bool(params, "cancel_at_period_end")
            obj["cancel_at_period_end"] = cancel
            if cancel:
                obj["cancel_at"] = _period(obj)[1]
                obj["canceled_at"] = self._now()
                obj["cancellation_details"]["reason"] = "cancellation_requested"
            else:
                obj["cancel_at"] = obj["canceled_at"] = None
                obj["cancellation_details"] = {"comment": None, "feedback": None, "reason": None}
        if "cancellation_details" in params:
            details = _dict(params, "cancellation_details")
            for key in ("comment", "feedback"):
                if key in details:
                    obj["cancellation_details"][key] = _nullable(details[key])
        if "metadata" in params:
            obj["metadata"] = _merge_metadata(obj["metadata"], params["metadata"])
        if "description" in params:
            obj["description"] = _nullable(params["description"])
        return self._render(obj, params.get("expand"))

    def _update_items(self, obj, params):
        """`items[n][id|price|quantity|deleted]`: swap, add or delete items. With
        `proration_behavior=always_invoice` Stripe invoices the proration now (and charges it: the
        invoice is `paid`, `billing_reason=subscription_update`, its lines `proration: true`)."""
        updates = params["items"]
        if not isinstance(updates, list):
            raise StripeError(400, "Invalid array", param="items")
        behavior = params.get("proration_behavior", "create_prorations")
        if behavior not in ("always_invoice", "create_prorations", "none"):
            raise StripeError(400, f"Invalid proration_behavior: {behavior}", param="proration_behavior")
        start, end = _period(obj)
        items = obj["items"]["data"]
        prorations = []  # (price, sign) for licensed prices leaving or arriving
        for index, update in enumerate(updates):
            item = next((i for i in items if i["id"] == update.get("id")), None) if update.get("id") else None
            if update.get("id") and item is None:
                raise StripeError(
                    400, f"Invalid subscription_item: {update['id']}", param=f"items[{index}][id]"
                )
            if item is not None and _bool(update, "deleted"):
                items.remove(item)
                prorations.append((item["price"], -1))
                continue
            price_id = update.get("price")
            if price_id is None:
                continue
            price = copy.deepcopy(self._find(price_id, "price"))
            if item is not None:
                prorations.append((item["price"], -1))
                items.remove(item)
            new_item = objects.subscription_item(
                subscription=obj["id"],
                price=price,
                current_period_start=start,
                current_period_end=end,
                quantity=int(update.get("quantity", 1)),
                created=self._now(),
            )
            items.append(new_item)
            prorations.append((price, 1))
        obj["items"]["total_count"] = len(items)
        if behavior == "always_invoice":
            self._proration_invoice(obj, prorations, start, end)

    def _proration_invoice(self, obj, prorations, start, end):
        now = self._now()
        fraction = max(0, end - now) / max(1, end - start)
        lines = [
            (price["id"], sign * round((price["unit_amount"] or 0) * fraction), 1)
            for price, sign in prorations
            if (price.get("recurring") or {}).get("usage_type") != "metered"
        ]
        total = sum(amount for _, amount, _ in lines)
        invoice = self.add_invoice(
            obj["customer"],
            subscription=obj["id"],
            status="paid",
            lines=[],
            billing_reason="subscription_update",
            amount_paid=max(total, 0),
        )
        stored = self._find(invoice["id"], "invoice")
        for price_id, amount, quantity in lines:
            line = objects.invoice_line_item(
                invoice=stored["id"],
                price=self._find(price_id, "price"),
                amount=amount,
                quantity=quantity,
                subscription=obj["id"],
                period_start=now,
                period_end=end,
                description=("Unused time on " if amount < 0 else "Remaining time on ") + price_id,
            )
            line["parent"]["subscription_item_details"]["proration"] = True
            stored["lines"]["data"].append(line)
        stored["lines"]["total_count"] = len(stored["lines"]["data"])
        stored.update(
            amount_due=max(total, 0),
            amount_paid=max(total, 0),
            amount_remaining=0,
            subtotal=total,
            subtotal_excluding_tax=total,
            total=total,
            total_excluding_tax=total,
        )
        stored["status_transitions"]["paid_at"] = now
        obj["latest_invoice"] = stored["id"]

    def _cancel_subscription(self, params, id):
        obj = self._find(id, "subscription")
        if obj["status"] in ("canceled", "incomplete_expired"):
            raise StripeError(
                400, "A canceled subscription can only update its cancellation_details and metadata."
            )
        now = self._now()
        obj.update(
            status="canceled", canceled_at=now, ended_at=now, cancel_at=None, cancel_at_period_end=False
        )
        obj["cancellation_details"] = {"comment": None, "feedback": None, "reason": "cancellation_requested"}
        details = _dict(params, "cancellation_details")
        for key in ("comment", "feedback"):
            if key in details:
                obj["cancellation_details"][key] = _nullable(details[key])
        return self._render(obj, params.get("expand"))

    def _list_subscription_items(self, params):
        subscription_id = params.get("subscription")
        if not subscription_id:
            raise _missing("subscription")
        items = self._find(subscription_id, "subscription")["items"]["data"]
        return self._list(
            items, params, f"/v1/subscription_items?subscription={subscription_id}", newest_first=False
        )


# The parameters these endpoints model (routes.py refuses any other with `parameter_unknown`).
_SUBSCRIPTION_UPDATE_FIELDS = {
    "cancel_at_period_end", "cancellation_details", "description", "items", "metadata", "payment_behavior",
    "proration_behavior",
}  # fmt: skip


def _period(subscription: dict) -> tuple[int, int]:
    """A subscription's current period: since basil it lives on its items."""
    items = subscription["items"]["data"]
    if not items:
        return subscription["start_date"], subscription["start_date"]
    return items[0]["current_period_start"], items[0]["current_period_end"]


def _item_for_price(subscription: dict, price_id: str) -> dict | None:
    return next((i for i in subscription["items"]["data"] if i["price"]["id"] == price_id), None)
