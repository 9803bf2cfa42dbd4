"""Endpoints: invoices and their lines."""

from tests.stripe_standin.server.forms import StripeError


class InvoicesMixin:
    """The invoice endpoints, mixed into `StripeStandin` (core.py)."""

    # invoices

    def _get_invoice(self, params, id):
        return self._retrieve("invoice", id, params)

    def _list_invoices(self, params):
        customer = params.get("customer")
        subscription = params.get("subscription")
        status = params.get("status")

        def keep(i):
            parent = i["parent"] or {}
            sub = (parent.get("subscription_details") or {}).get("subscription")
            return (
                (customer is None or i["customer"] == customer)
                and (subscription is None or sub == subscription)
                and (status is None or i["status"] == status)
            )

        return self._list("invoice", params, "/v1/invoices", keep)

    def _list_invoice_lines(self, params, id):
        invoice = self._find(id, "invoice")
        return self._list(invoice["lines"]["data"], params, f"/v1/invoices/{id}/lines", newest_first=False)

    def _pay_invoice(self, params, id):
        obj = self._find(id, "invoice")
        if obj["status"] == "paid":
            raise StripeError(400, "Invoice is already paid")
        if obj["status"] != "open":
            raise StripeError(
                400, f"You can only pay an invoice that is open. This invoice is {obj['status']}."
            )
        now = self._now()
        obj.update(
            status="paid",
            amount_paid=obj["amount_due"],
            amount_remaining=0,
            attempted=True,
            attempt_count=obj["attempt_count"] + 1,
            next_payment_attempt=None,
            auto_advance=False,
        )
        obj["status_transitions"]["paid_at"] = now
        return self._render(obj, params.get("expand"))

    def _void_invoice(self, params, id):
        return self._close_invoice(id, "void", "voided_at", params)

    def _mark_invoice_uncollectible(self, params, id):
        return self._close_invoice(id, "uncollectible", "marked_uncollectible_at", params)

    def _close_invoice(self, id, status, transition, params):
        obj = self._find(id, "invoice")
        if obj["status"] != "open":
            raise StripeError(
                400, f"You can only mark an open invoice as {status}. This invoice is {obj['status']}."
            )
        obj.update(status=status, amount_remaining=0, next_payment_attempt=None, auto_advance=False)
        obj["status_transitions"][transition] = self._now()
        return self._render(obj, params.get("expand"))
