"""Payment-mode Checkout, payment intents, charges, payment methods and refunds."""

import copy

from tests.stripe_standin import objects
from tests.stripe_standin.server.forms import StripeError, _int, _missing


def _billing_details() -> dict:
    return {"address": objects.blank_address(), "email": None, "name": None, "phone": None, "tax_id": None}


def payment_method(*, customer: str | None, created: int) -> dict:
    return {
        "id": objects.new_id("pm"),
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": _billing_details(),
        "card": {
            "brand": "visa", "checks": {"address_line1_check": None, "address_postal_code_check": None,
                                        "cvc_check": "pass"},
            "country": "US", "display_brand": "visa", "exp_month": 12, "exp_year": 2030,
            "fingerprint": "Xt5EWLLDS7FJjR1c", "funding": "credit", "generated_from": None, "last4": "4242",
            "networks": {"available": ["visa"], "preferred": None}, "regulated_status": "unregulated",
            "three_d_secure_usage": {"supported": True}, "wallet": None,
        },
        "created": created,
        "customer": customer,
        "customer_account": None,
        "livemode": False,
        "metadata": {},
        "type": "card",
    }  # fmt: skip


def payment_intent(*, amount: int, currency: str, customer: str | None, payment_method: str, charge: str,
                   created: int, metadata: dict, off_session: bool = False) -> dict:  # fmt: skip
    return {
        "id": objects.new_id("pi"),
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": amount,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": None,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": "automatic",
        "client_secret": None,
        "confirmation_method": "automatic",
        "created": created,
        "currency": currency,
        "customer": customer,
        "customer_account": None,
        "description": None,
        "last_payment_error": None,
        "latest_charge": charge,
        "livemode": False,
        "metadata": dict(metadata),
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": payment_method,
        "payment_method_configuration_details": None,
        "payment_method_options": {},
        "payment_method_types": ["card"],
        "processing": None,
        "receipt_email": None,
        "review": None,
        "setup_future_usage": None if off_session else "off_session",
        "shipping": None,
        "source": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "succeeded",
        "transfer_data": None,
        "transfer_group": None,
    }


def charge(*, amount: int, currency: str, customer: str | None, payment_intent: str, payment_method: str,
           created: int) -> dict:  # fmt: skip
    return {
        "id": objects.new_id("ch"),
        "object": "charge",
        "amount": amount,
        "amount_captured": amount,
        "amount_refunded": 0,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": None,
        "billing_details": _billing_details(),
        "calculated_statement_descriptor": "BILLING",
        "captured": True,
        "created": created,
        "currency": currency,
        "customer": customer,
        "description": None,
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": None,
        "failure_message": None,
        "fraud_details": {},
        "livemode": False,
        "metadata": {},
        "on_behalf_of": None,
        "outcome": {"network_status": "approved_by_network", "reason": None, "risk_level": "normal",
                    "seller_message": "Payment complete.", "type": "authorized"},
        "paid": True,
        "payment_intent": payment_intent,
        "payment_method": payment_method,
        "receipt_email": None,
        "receipt_number": None,
        "receipt_url": None,
        "refunded": False,
        "review": None,
        "shipping": None,
        "source_transfer": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "succeeded",
        "transfer_data": None,
        "transfer_group": None,
    }  # fmt: skip


class PaymentsMixin:
    """Payment intents, charges, payment methods and refunds, mixed into `StripeStandin` (core.py)."""

    def _get_payment_intent(self, params, id):
        return self._retrieve("payment_intent", id, params)

    def _get_charge(self, params, id):
        return self._retrieve("charge", id, params)

    def _get_payment_method(self, params, id):
        return self._retrieve("payment_method", id, params)

    def _create_payment_intent(self, params):
        """An off-session payment with a saved payment method (confirm=true): succeeds at once."""
        for name in ("amount", "currency", "customer", "payment_method"):
            if not params.get(name):
                raise _missing(name)
        if params.get("confirm") != "true":
            raise StripeError(400, "The stand-in models only confirm=true payment intents.", param="confirm")
        self._find(params["payment_method"], "payment_method")
        return self._render(
            self.pay(
                customer=params["customer"], amount=_int(params, "amount"), currency=params["currency"],
                metadata=params.get("metadata") or {}, payment_method_id=params["payment_method"],
                off_session=params.get("off_session") == "true",
            )
        )  # fmt: skip

    def _create_refund(self, params):
        target = params.get("payment_intent") or params.get("charge")
        if not target:
            raise _missing("payment_intent")
        if target.startswith("pi_"):
            target = self._find(target, "payment_intent")["latest_charge"]
        return self._render(self.refund_charge(target, _int(params, "amount")))

    # test side and internal

    def pay(self, *, customer, amount, currency, metadata, payment_method_id=None, off_session=False) -> dict:
        """A successful payment: payment method (unless given), payment intent and its charge."""
        with self._lock:
            now = self._now()
            if payment_method_id is None:
                pm = payment_method(customer=customer, created=now)
                self._objects["payment_method"][pm["id"]] = pm
                payment_method_id = pm["id"]
            intent = payment_intent(
                amount=amount, currency=currency, customer=customer, payment_method=payment_method_id,
                charge="", created=now, metadata=metadata, off_session=off_session,
            )  # fmt: skip
            paid = charge(
                amount=amount, currency=currency, customer=customer, payment_intent=intent["id"],
                payment_method=payment_method_id, created=now,
            )  # fmt: skip
            intent["latest_charge"] = paid["id"]
            self._objects["payment_intent"][intent["id"]] = intent
            self._objects["charge"][paid["id"]] = paid
            return copy.deepcopy(intent)

    def refund_charge(self, charge_id: str, amount: int | None = None) -> dict:
        """Refund `amount` (all that is left by default) of a charge; returns the refund. Deliver
        `event("charge.refunded", charge_id)` as Stripe would."""
        with self._lock:
            paid = self._find(charge_id, "charge")
            left = paid["amount"] - paid["amount_refunded"]
            amount = left if amount is None else amount
            if amount <= 0 or amount > left:
                raise StripeError(
                    400, f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})",
                    param="amount",
                )  # fmt: skip
            paid["amount_refunded"] += amount
            paid["refunded"] = paid["amount_refunded"] == paid["amount"]
            refund = {
                "id": objects.new_id("re"), "object": "refund", "amount": amount,
                "balance_transaction": None, "charge": charge_id, "created": self._now(),
                "currency": paid["currency"],
                "destination_details": {"card": {"type": "refund"}, "type": "card"},
                "metadata": {}, "payment_intent": paid["payment_intent"], "reason": None,
                "receipt_number": None, "source_transfer_reversal": None, "status": "succeeded",
                "transfer_reversal": None,
            }  # fmt: skip
            self._objects["refund"][refund["id"]] = refund
            return copy.deepcopy(refund)


_PAYMENT_INTENT_FIELDS = {
    "amount", "confirm", "currency", "customer", "description", "metadata", "off_session", "payment_method",
    "payment_method_types",
}  # fmt: skip
_REFUND_FIELDS = {"amount", "charge", "metadata", "payment_intent", "reason"}
