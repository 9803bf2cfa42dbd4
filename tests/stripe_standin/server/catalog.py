"""Endpoints: products (and their features), prices."""

from decimal import Decimal, InvalidOperation

from tests.stripe_standin import objects
from tests.stripe_standin.server.forms import (
    StripeError,
    _bool,
    _dict,
    _int,
    _merge_metadata,
    _missing,
    _no_such,
    _nullable,
)


class CatalogMixin:
    """The product and price endpoints, mixed into `StripeStandin` (core.py)."""

    # products

    def _create_product(self, params):
        if not params.get("name"):
            raise _missing("name")
        product_id = params.get("id")
        if product_id and product_id in self._objects["product"]:
            raise StripeError(400, "Product already exists.", code="resource_already_exists", param="id")
        obj = objects.product(id=product_id or None, name=params["name"], created=self._now())
        self._apply_product_fields(obj, params)
        self._objects["product"][obj["id"]] = obj
        return self._render(obj, params.get("expand"))

    def _update_product(self, params, id):
        obj = self._find(id, "product")
        self._apply_product_fields(obj, params)
        if "default_price" in params:
            obj["default_price"] = _nullable(params["default_price"])
        obj["updated"] = self._now()
        return self._render(obj, params.get("expand"))

    def _apply_product_fields(self, obj, params):
        for name in ("name", "description", "statement_descriptor", "tax_code", "unit_label", "url"):
            if name in params:
                obj[name] = _nullable(params[name])
        if "active" in params:
            obj["active"] = _bool(params, "active")
        if "metadata" in params:
            obj["metadata"] = _merge_metadata(obj["metadata"], params["metadata"])

    def _get_product(self, params, id):
        return self._retrieve("product", id, params)

    def _list_products(self, params):
        active = _bool(params, "active")
        ids = params.get("ids")

        def keep(p):
            return (active is None or p["active"] == active) and (ids is None or p["id"] in ids)

        return self._list("product", params, "/v1/products", keep)

    def _list_product_features(self, params, id):
        # Entitlement features are not modelled: every product has none (dj-stripe asks on each sync).
        self._find(id, "product")
        return self._list([], params, f"/v1/products/{id}/features")

    # prices

    def _create_price(self, params):
        currency = params.get("currency")
        if not currency:
            raise _missing("currency")
        product_id = params.get("product")
        if product_id is None and "product_data" in params:
            data = _dict(params, "product_data")
            if not data.get("name"):
                raise _missing("product_data[name]")
            product_obj = objects.product(
                name=data["name"], metadata=data.get("metadata"), created=self._now()
            )
            self._objects["product"][product_obj["id"]] = product_obj
            product_id = product_obj["id"]
        if product_id is None:
            raise _missing("product")
        if product_id not in self._objects["product"]:
            raise _no_such("product", product_id, param="product")
        if "unit_amount" in params and "unit_amount_decimal" in params:
            raise StripeError(
                400,
                "You may only specify one of these parameters: unit_amount, unit_amount_decimal.",
                param="unit_amount_decimal",
            )
        unit_amount = _int(params, "unit_amount")
        unit_amount_decimal = params.get("unit_amount_decimal")
        if unit_amount_decimal is not None:
            try:
                Decimal(unit_amount_decimal)
            except InvalidOperation:
                raise StripeError(
                    400, f"Invalid decimal: {unit_amount_decimal}", param="unit_amount_decimal"
                ) from None
        if unit_amount is None and unit_amount_decimal is None:
            raise _missing("unit_amount")
        recurring = _dict(params, "recurring") if "recurring" in params else None
        kwargs = {"interval": None}
        if recurring is not None:
            if recurring.get("interval") not in ("day", "week", "month", "year"):
                raise (
                    _missing("recurring[interval]")
                    if not recurring.get("interval")
                    else StripeError(
                        400,
                        f"Invalid recurring[interval]: {recurring['interval']}",
                        param="recurring[interval]",
                    )
                )
            usage_type = recurring.get("usage_type", "licensed")
            if usage_type not in ("licensed", "metered"):
                raise StripeError(
                    400, f"Invalid recurring[usage_type]: {usage_type}", param="recurring[usage_type]"
                )
            meter_id = recurring.get("meter")
            if usage_type == "metered" and not meter_id:
                raise _missing("recurring[meter]")
            if meter_id and meter_id not in self._objects["billing.meter"]:
                raise _no_such("billing.meter", meter_id, param="recurring[meter]")
            kwargs = {
                "interval": recurring["interval"],
                "interval_count": _int(recurring, "interval_count", 1),
                "usage_type": usage_type,
                "meter": meter_id,
            }
        lookup_key = params.get("lookup_key")
        if lookup_key:
            self._claim_lookup_key(lookup_key, _bool(params, "transfer_lookup_key", False))
        obj = objects.price(
            product=product_id,
            unit_amount=unit_amount,
            unit_amount_decimal=unit_amount_decimal,
            currency=currency.lower(),
            lookup_key=lookup_key or None,
            nickname=params.get("nickname"),
            metadata=_merge_metadata({}, params.get("metadata", {})),
            created=self._now(),
            **kwargs,
        )
        if "active" in params:
            obj["active"] = _bool(params, "active")
        if "tax_behavior" in params:
            obj["tax_behavior"] = params["tax_behavior"]
        self._objects["price"][obj["id"]] = obj
        return self._render(obj, params.get("expand"))

    def _claim_lookup_key(self, lookup_key: str, transfer: bool, for_price: str | None = None):
        for other in self._objects["price"].values():
            if other["lookup_key"] == lookup_key and other["id"] != for_price:
                if not transfer:
                    raise StripeError(
                        400,
                        f"A price (`{other['id']}`) already uses that lookup key.",
                        param="lookup_key",
                    )
                other["lookup_key"] = None

    def _update_price(self, params, id):
        obj = self._find(id, "price")
        if "lookup_key" in params:
            lookup_key = _nullable(params["lookup_key"])
            if lookup_key:
                self._claim_lookup_key(lookup_key, _bool(params, "transfer_lookup_key", False), for_price=id)
            obj["lookup_key"] = lookup_key
        if "active" in params:
            obj["active"] = _bool(params, "active")
        if "nickname" in params:
            obj["nickname"] = _nullable(params["nickname"])
        if "metadata" in params:
            obj["metadata"] = _merge_metadata(obj["metadata"], params["metadata"])
        if "tax_behavior" in params:
            obj["tax_behavior"] = params["tax_behavior"]
        return self._render(obj, params.get("expand"))

    def _get_price(self, params, id):
        return self._retrieve("price", id, params)

    def _list_prices(self, params):
        lookup_keys = params.get("lookup_keys")
        if lookup_keys is not None and (not isinstance(lookup_keys, list) or len(lookup_keys) > 10):
            raise StripeError(400, "lookup_keys must be an array of at most 10 strings", param="lookup_keys")
        active = _bool(params, "active")
        product = params.get("product")
        type_ = params.get("type")
        currency = params.get("currency")

        def keep(p):
            return (
                (lookup_keys is None or p["lookup_key"] in lookup_keys)
                and (active is None or p["active"] == active)
                and (product is None or p["product"] == product)
                and (type_ is None or p["type"] == type_)
                and (currency is None or p["currency"] == currency)
            )

        return self._list("price", params, "/v1/prices", keep)


# The parameters these endpoints model (routes.py refuses any other with `parameter_unknown`).
_PRODUCT_FIELDS = {
    "active",
    "description",
    "metadata",
    "name",
    "statement_descriptor",
    "tax_code",
    "unit_label",
    "url",
}
_PRICE_CREATE_FIELDS = {
    "active", "currency", "lookup_key", "metadata", "nickname", "product", "product_data", "recurring",
    "tax_behavior", "transfer_lookup_key", "unit_amount", "unit_amount_decimal",
}  # fmt: skip
_PRICE_UPDATE_FIELDS = {"active", "lookup_key", "metadata", "nickname", "tax_behavior", "transfer_lookup_key"}
