"""Endpoints: checkout sessions (subscription mode)."""

import copy

from tests.stripe_standin import objects
from tests.stripe_standin.server.forms import (
    StripeError,
    _bool,
    _dict,
    _int,
    _merge_metadata,
    _missing,
    _no_such,
)


class CheckoutMixin:
    """The checkout session endpoints, mixed into `StripeStandin` (core.py)."""

    # checkout sessions

    def _create_checkout_session(self, params):
        mode = params.get("mode")
        if not mode:
            raise _missing("mode")
        if mode not in ("subscription", "payment"):
            raise StripeError(
                400, f"The stand-in models mode=subscription and payment, not {mode}.", param="mode"
            )
        if params.get("customer") and params.get("customer_email"):
            raise StripeError(
                400,
                "You may only specify one of these parameters: customer, customer_email.",
                param="customer_email",
            )
        customer = params.get("customer")
        if customer and customer not in self._objects["customer"]:
            raise _no_such("customer", customer, param="customer")
        line_items = params.get("line_items")
        if not isinstance(line_items, list) or not line_items:
            raise _missing("line_items")
        items = []
        for index, line in enumerate(line_items):
            price_id = line.get("price") if isinstance(line, dict) else None
            if not price_id and isinstance(line, dict) and line.get("price_data"):
                price_id = self._inline_price(line["price_data"], index)
            if not price_id:
                raise _missing(f"line_items[{index}][price]")
            price = self._objects["price"].get(price_id)
            if price is None:
                raise _no_such("price", price_id, param=f"line_items[{index}][price]")
            if not price["active"] and not line.get("price_data"):
                raise StripeError(
                    400,
                    "The price specified is inactive. This field only accepts active prices.",
                    param=f"line_items[{index}][price]",
                )
            metered = (price["recurring"] or {}).get("usage_type") == "metered"
            quantity = _int(line, "quantity")
            if metered and quantity is not None:
                raise StripeError(
                    400,
                    f"Quantity should not be specified where usage_type is `metered`. Remove quantity from "
                    f"`line_items[{index}]`",
                    param=f"line_items[{index}][quantity]",
                )
            if not metered and quantity is None:
                raise StripeError(
                    400,
                    f"Quantity is required. Add `quantity` to `line_items[{index}]`",
                    code="parameter_missing",
                    param=f"line_items[{index}][quantity]",
                )
            items.append(objects.checkout_line_item(price=copy.deepcopy(price), quantity=quantity))
        if mode == "payment" and any(item["price"]["recurring"] for item in items):
            raise StripeError(
                400,
                "You specified `payment` mode but passed a recurring price. Either switch to `subscription` "
                "mode or use only one-time prices.",
                param="line_items",
            )
        if mode == "subscription" and not any(item["price"]["recurring"] for item in items):
            raise StripeError(
                400,
                "You must provide at least one recurring price in `subscription` mode when using prices.",
                param="line_items",
            )
        currencies = {item["currency"] for item in items}
        if len(currencies) > 1:
            raise StripeError(400, "All prices must use the same currency.", param="line_items")
        obj = objects.checkout_session(
            line_items=items,
            mode=mode,
            customer=customer,
            customer_email=params.get("customer_email"),
            success_url=params.get("success_url"),
            cancel_url=params.get("cancel_url"),
            metadata=_merge_metadata({}, params.get("metadata", {})),
            client_reference_id=params.get("client_reference_id"),
            created=self._now(),
            expires_at=_int(params, "expires_at"),
        )
        for name in ("allow_promotion_codes",):
            if name in params:
                obj[name] = _bool(params, name)
        for name in ("billing_address_collection", "payment_method_collection", "locale"):
            if name in params:
                obj[name] = params[name]
        self._objects["checkout.session"][obj["id"]] = obj
        self._checkout_items[obj["id"]] = items
        self._checkout_subscription_data[obj["id"]] = _dict(params, "subscription_data")
        self._checkout_payment_data[obj["id"]] = _dict(params, "payment_intent_data")
        return self._render(obj, params.get("expand"))

    def _inline_price(self, data: dict, index: int) -> str:
        """`line_items[n][price_data]`: Stripe creates a one-time, inactive-in-lists price for it."""
        for name in ("currency", "unit_amount"):
            if not data.get(name):
                raise _missing(f"line_items[{index}][price_data][{name}]")
        product = data.get("product")
        if not product:
            name = (data.get("product_data") or {}).get("name")
            if not name:
                raise _missing(f"line_items[{index}][price_data][product_data][name]")
            product = self.add_product(name=name)["id"]
        price = objects.price(
            product=product, unit_amount=int(data["unit_amount"]), currency=data["currency"], interval=None,
            created=self._now(),
        )  # fmt: skip
        price["active"] = False  # Stripe marks inline prices inactive (not reusable)
        self._objects["price"][price["id"]] = price
        return price["id"]

    def _get_checkout_session(self, params, id):
        return self._retrieve("checkout.session", id, params)

    def _list_checkout_sessions(self, params):
        filters = {name: params[name] for name in ("customer", "status", "subscription") if name in params}
        return self._list(
            "checkout.session",
            params,
            "/v1/checkout/sessions",
            lambda s: all(s.get(name) == value for name, value in filters.items()),
        )

    def _list_checkout_line_items(self, params, id):
        self._find(id, "checkout.session")
        return self._list(
            self._checkout_items[id], params, f"/v1/checkout/sessions/{id}/line_items", newest_first=False
        )

    def _expire_checkout_session(self, params, id):
        obj = self._find(id, "checkout.session")
        if obj["status"] != "open":
            raise StripeError(
                400,
                f'Only Checkout Sessions with a status in ["open"] can be expired. This session has '
                f'status "{obj["status"]}".',
            )
        obj.update(status="expired", url=None)
        return self._render(obj, params.get("expand"))


# The parameters these endpoints model (routes.py refuses any other with `parameter_unknown`).
_CHECKOUT_FIELDS = {
    "allow_promotion_codes", "billing_address_collection", "cancel_url", "client_reference_id", "customer",
    "customer_email", "expires_at", "line_items", "locale", "metadata", "mode", "payment_method_collection",
    "payment_intent_data", "subscription_data", "success_url",
}  # fmt: skip
