"""Endpoints: the account, customers."""

from tests.stripe_standin import objects
from tests.stripe_standin.server.forms import StripeError, _dict, _int, _merge_metadata, _missing, _nullable


class CustomersMixin:
    """The account and customer endpoints, mixed into `StripeStandin` (core.py)."""

    # account

    def _get_account(self, params):
        return self._render(self.account, params.get("expand"))

    def _get_account_by_id(self, params, id):
        return self._retrieve("account", id, params)

    # customers

    def _create_customer(self, params):
        obj = objects.customer(created=self._now())
        self._apply_customer_fields(obj, params)
        self._objects["customer"][obj["id"]] = obj
        return self._render(obj, params.get("expand"))

    def _update_customer(self, params, id):
        obj = self._find(id, "customer")
        self._apply_customer_fields(obj, params)
        return self._render(obj, params.get("expand"))

    def _apply_customer_fields(self, obj, params):
        for name in ("email", "name", "description", "phone", "business_name", "individual_name"):
            if name in params:
                obj[name] = _nullable(params[name])
        if "metadata" in params:
            obj["metadata"] = _merge_metadata(obj["metadata"], params["metadata"])
        if "address" in params:
            obj["address"] = (
                None if params["address"] == "" else {**objects.blank_address(), **params["address"]}
            )
        if "shipping" in params:
            shipping = params["shipping"]
            obj["shipping"] = (
                None
                if shipping == ""
                else {
                    "address": {**objects.blank_address(), **shipping.get("address", {})},
                    "name": shipping.get("name"),
                    "phone": shipping.get("phone"),
                }
            )
        if "preferred_locales" in params:
            obj["preferred_locales"] = params["preferred_locales"] or []
        if "tax_exempt" in params:
            obj["tax_exempt"] = params["tax_exempt"] or "none"
        if "invoice_settings" in params:
            settings = _dict(params, "invoice_settings")
            for key in ("default_payment_method", "footer"):
                if key in settings:
                    obj["invoice_settings"][key] = _nullable(settings[key])
        if "balance" in params:
            obj["balance"] = _int(params, "balance")
        if "invoice_prefix" in params:
            obj["invoice_prefix"] = params["invoice_prefix"]
        if "next_invoice_sequence" in params:
            obj["next_invoice_sequence"] = _int(params, "next_invoice_sequence")

    def _get_customer(self, params, id):
        return self._retrieve("customer", id, params)

    def _list_customers(self, params):
        email = params.get("email")
        return self._list("customer", params, "/v1/customers", lambda c: email is None or c["email"] == email)

    # balance transactions: a negative amount is a credit, taken off the customer's next invoices

    def _create_balance_transaction(self, params, id):
        customer = self._find(id, "customer")
        amount = _int(params, "amount")
        if amount is None:
            raise _missing("amount")
        if amount == 0:
            raise StripeError(400, "Amount must be non-zero.", param="amount")
        currency = params.get("currency")
        if not currency:
            raise _missing("currency")
        if customer["currency"] not in (None, currency):
            raise StripeError(
                400,
                f"The currency {currency} does not match the customer's {customer['currency']}.",
                param="currency",
            )
        customer["currency"] = currency
        customer["balance"] += amount
        obj = objects.customer_balance_transaction(
            customer=id,
            amount=amount,
            currency=currency,
            ending_balance=customer["balance"],
            description=_nullable(params.get("description")),
            metadata=_merge_metadata({}, params.get("metadata", {})),
            created=self._now(),
        )
        self._objects["customer_balance_transaction"][obj["id"]] = obj
        return self._render(obj, params.get("expand"))

    def _list_balance_transactions(self, params, id):
        self._find(id, "customer")
        path = f"/v1/customers/{id}/balance_transactions"
        return self._list("customer_balance_transaction", params, path, lambda t: t["customer"] == id)

    def _delete_customer(self, params, id):
        self._find(id, "customer")
        del self._objects["customer"][id]
        return {"id": id, "object": "customer", "deleted": True}


_BALANCE_TRANSACTION_FIELDS = {"amount", "currency", "description", "metadata"}

# The parameters these endpoints model (routes.py refuses any other with `parameter_unknown`).
_CUSTOMER_FIELDS = {
    "address", "balance", "business_name", "description", "email", "individual_name", "invoice_prefix",
    "invoice_settings", "metadata", "name", "next_invoice_sequence", "phone", "preferred_locales",
    "shipping", "tax_exempt",
}  # fmt: skip
