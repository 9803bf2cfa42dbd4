"""Automatic top-ups: when a debit takes the available balance below the org's threshold, one
purchase is made with the card saved by an earlier purchase, at most once per crossing."""

from decimal import Decimal
from typing import Any

from django.db import transaction

from billing import stripe_api
from billing.exceptions import TopUpsUnavailable
from billing.models import CreditBalance, CreditPurchase, PurchaseStatus, TopUpTerms
from billing.services.checkout import require_billing_role
from billing.services.ledger import open_ledger
from billing.services.payments import customer_id_for
from billing.services.purchases import grant_purchase, price_of
from core.errors import InvalidRequest
from orgs.models import AuditCategory, Organization
from orgs.services.audit import Actor, record_audit
from orgs.services.outbox import enqueue_outbox

AUTO_TOP_UP = "stripe.payment_intent.auto_top_up"


def set_auto_top_up(
    *,
    org: Organization,
    threshold_credits: Decimal | None,
    credits: Decimal | None,
    user_id: str,
    actor: Actor,
) -> CreditBalance:
    """Turn the automatic top-up on (both values) or off (both None), under the credit lock, armed;
    audited. Owner, admin or billing members only; `credits` within the catalog's purchase bounds."""
    require_billing_role(org=org, user_id=user_id)
    if (threshold_credits is None) != (credits is None):
        raise InvalidRequest(details={"fields": {"credits": "Give both values, or neither to turn it off."}})
    if credits is not None:
        terms = TopUpTerms.objects.first()
        if terms is None:
            raise TopUpsUnavailable()
        if not terms.min_credits <= credits <= terms.max_credits:
            raise InvalidRequest(
                details={"fields": {"credits": f"Between {terms.min_credits} and {terms.max_credits}."}}
            )
    with transaction.atomic():
        balance = CreditBalance.objects.select_for_update().get(org=org)
        before = {
            "threshold": _text(balance.auto_top_up_threshold),
            "credits": _text(balance.auto_top_up_credits),
        }
        balance.auto_top_up_threshold, balance.auto_top_up_credits = threshold_credits, credits
        balance.auto_top_up_armed = True
        balance.save(update_fields=["auto_top_up_threshold", "auto_top_up_credits", "auto_top_up_armed"])
        record_audit(
            actor=actor,
            action="credits.auto_top_up_set",
            category=AuditCategory.CREDITS,
            org=org,
            before=before,
            after={"threshold": _text(threshold_credits), "credits": _text(credits)},
        )
    return balance


def _text(value: Decimal | None) -> str | None:
    return f"{value:.6f}" if value is not None else None


def top_up_on_crossing(*, balance: CreditBalance, before: Decimal, after: Decimal) -> CreditPurchase | None:
    """Called by debits under the credit lock with the available balance before and after: on a
    crossing below the armed threshold, record one automatic purchase, disarm, and hand the payment
    to the outbox (performed after commit). Nothing else costs a query."""
    threshold, credits = balance.auto_top_up_threshold, balance.auto_top_up_credits
    if (
        threshold is None
        or credits is None
        or not balance.auto_top_up_armed
        or not before >= threshold > after
    ):
        return None
    terms = TopUpTerms.objects.first()
    if terms is None:
        return None
    CreditBalance.objects.filter(pk=balance.pk).update(auto_top_up_armed=False)
    # Numbered under the credit lock: the n-th automatic top-up of the org.
    number = CreditPurchase.objects.filter(org_id=balance.org_id, automatic=True).count() + 1
    balance.auto_top_up_armed = False
    purchase = CreditPurchase.objects.create(
        org_id=balance.org_id,
        credits=credits,
        amount_cents=price_of(credits, terms),
        currency=terms.currency,
        user_id="",
        automatic=True,
        idempotency_key=f"auto:{number}",
    )
    enqueue_outbox(
        kind=AUTO_TOP_UP, payload={"purchase_id": purchase.pk}, idempotency_key=f"auto-top-up:{purchase.pk}"
    )
    return purchase


def perform_auto_top_up(*, purchase_id: int, actor: Actor) -> dict[str, Any]:
    """The outbox message: charge the card saved by the org's last paid purchase (off session, key
    `credit-purchase:{id}`) and, once Stripe says succeeded, write the grant (grant_purchase). A
    refusal (no saved card, a decline) marks the purchase failed; the top-up stays disarmed until a
    purchase re-arms it. Idempotent: a granted purchase is skipped."""
    purchase = CreditPurchase.objects.select_related("org").get(pk=purchase_id)
    if purchase.grant_id is not None or purchase.status == PurchaseStatus.FAILED:
        return {"skipped": purchase.status}
    try:
        intent = _charge(purchase)
    except stripe_api.StripeRefused as error:
        purchase.status, purchase.error = PurchaseStatus.FAILED, error.message
        purchase.save(update_fields=["status", "error", "updated_at"])
        return {"failed": error.message}
    if intent["status"] != "succeeded":
        return {"payment_intent": intent["id"], "status": intent["status"]}
    with transaction.atomic():
        ledger = open_ledger(purchase.org_id)
        purchase = CreditPurchase.objects.select_for_update().get(pk=purchase_id)
        if purchase.grant_id is None:
            grant_purchase(purchase, ledger=ledger, payment_intent_id=intent["id"], actor=actor)
    return {"payment_intent": intent["id"], "granted": str(purchase.credits)}


def _charge(purchase: CreditPurchase) -> Any:
    paid = (
        CreditPurchase.objects.filter(org_id=purchase.org_id, status=PurchaseStatus.PAID)
        .exclude(payment_intent_id="")
        .order_by("-paid_at")
        .values_list("payment_intent_id", flat=True)
        .first()
    )
    customer_id = customer_id_for(purchase.org)
    saved = stripe_api.retrieve_payment_intent(paid)["payment_method"] if paid else None
    if not saved or not customer_id:
        raise stripe_api.StripeRefused("No saved card: buy credits once through Checkout first.")
    return stripe_api.charge_saved_card(
        customer_id=customer_id,
        payment_method_id=saved,
        amount_cents=purchase.amount_cents,
        currency=purchase.currency,
        metadata={"org_id": purchase.org.public_id, "credit_purchase": str(purchase.pk)},
        idempotency_key=f"credit-purchase:{purchase.pk}",
    )
