"""Prepaid credit purchases: a Stripe Checkout session in payment mode, the `purchase` grant written
once when Stripe says the payment succeeded, and refunds clawed back."""

import math
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from billing import stripe_api
from billing.credits import CREDIT_PLACES
from billing.exceptions import IdempotencyConflict, TopUpsUnavailable
from billing.models import CreditPurchase, GrantType, PurchaseStatus, TopUpTerms
from billing.services.allowances import ensure_allowances
from billing.services.checkout import ensure_customer, require_billing_role
from billing.services.ledger import OrgLedger, open_ledger
from billing.services.payments import lock_account
from core.errors import InvalidRequest
from orgs.models import AuditCategory, Organization
from orgs.services.audit import Actor, record_audit


def price_of(credits: Decimal, terms: TopUpTerms) -> int:
    """What `credits` cost in whole cents (rounded up: never below the catalog's price)."""
    return math.ceil(credits * terms.cents_per_credit)


def _terms_for(credits: Decimal) -> TopUpTerms:
    terms = TopUpTerms.objects.first()
    if terms is None:
        raise TopUpsUnavailable()
    if not terms.min_credits <= credits <= terms.max_credits:
        raise InvalidRequest(
            "Credits out of range for one purchase.",
            details={"fields": {"credits": f"Between {terms.min_credits} and {terms.max_credits}."}},
        )
    return terms


def start_credit_purchase(
    *,
    org: Organization,
    credits: Decimal,
    user_id: str,
    success_url: str,
    cancel_url: str,
    idempotency_key: str,
    actor: Actor,
) -> CreditPurchase:
    """Open a payment-mode Checkout session for `credits`, priced by the catalog's `[topups]`.

    Idempotent on (org, idempotency_key): the same key answers the same purchase and session (another
    amount with it is idempotency_conflict). The row is written before Stripe is called and the
    session is created with the idempotency key `credit-purchase:{row id}`, so a retry after a lost
    answer opens no second session. Nothing is granted here: the grant waits for Stripe's word that
    the payment succeeded (record_purchase_payment). Owner, admin or billing members only. Audited.
    """
    require_billing_role(org=org, user_id=user_id)
    terms = _terms_for(credits)
    with transaction.atomic():
        # Committed on its own (as for checkout): a failed session must not forget Stripe's customer.
        lock_account(org)
        customer_id = ensure_customer(org)
    with transaction.atomic():
        lock_account(org)
        purchase, _ = CreditPurchase.objects.get_or_create(
            org=org,
            idempotency_key=idempotency_key,
            defaults={
                "credits": credits,
                "amount_cents": price_of(credits, terms),
                "currency": terms.currency,
                "user_id": user_id,
            },
        )
        if purchase.credits != credits:
            raise IdempotencyConflict(details={"idempotency_key": idempotency_key})
        if purchase.stripe_session_id:
            return purchase
        session = stripe_api.create_payment_checkout_session(
            customer_id=customer_id,
            amount_cents=purchase.amount_cents,
            currency=purchase.currency,
            description=f"{credits.normalize():f} credits",
            success_url=success_url,
            cancel_url=cancel_url,
            metadata={"org_id": org.public_id, "credit_purchase": str(purchase.pk)},
            idempotency_key=f"credit-purchase:{purchase.pk}",
        )
        purchase.stripe_session_id, purchase.url = session["id"], session["url"]
        purchase.save(update_fields=["stripe_session_id", "url", "updated_at"])
        record_audit(
            actor=actor,
            action="credits.purchase_started",
            category=AuditCategory.CREDITS,
            org=org,
            after={"session": session["id"], "credits": str(credits), "amount_cents": purchase.amount_cents},
        )
    return purchase


def record_purchase_payment(*, session_id: str, actor: Actor) -> CreditPurchase | None:
    """checkout.session.completed / async_payment_succeeded: write the purchase grant once.

    The session is read from Stripe under the org's credit lock and the purchase row's lock; only
    `payment_status == "paid"` grants. A purchase already granted writes nothing, however often the
    event is delivered. The grant is linked to the payment intent (for refunds). None: not ours.
    """
    found = CreditPurchase.objects.filter(stripe_session_id=session_id).values_list("pk", "org_id").first()
    if found is None:
        return None
    with transaction.atomic():
        now = timezone.now()
        ledger = open_ledger(found[1], now=now)
        purchase = CreditPurchase.objects.select_for_update().get(pk=found[0])
        if purchase.grant_id is not None:
            return purchase
        session = stripe_api.retrieve_checkout_session(session_id)
        if session["payment_status"] != "paid":
            return purchase
        grant_purchase(
            purchase, ledger=ledger, payment_intent_id=session["payment_intent"] or "", actor=actor
        )
    return purchase


def grant_purchase(
    purchase: CreditPurchase, *, ledger: OrgLedger, payment_intent_id: str, actor: Actor
) -> None:
    """Write a paid purchase's grant into the org's opened (locked) ledger, linked to the payment
    intent; a purchase grant re-arms the automatic top-up. Call with the purchase row locked."""
    now = ledger.now
    ensure_allowances({purchase.org_id: ledger}, now=now, actor=actor)
    ledger.settle(reference=f"before-purchase:{purchase.pk}")
    grant = ledger.add_grant(
        org_id=purchase.org_id,
        grant_type=GrantType.PURCHASE,
        amount=purchase.credits,
        reason=f"Credit purchase (Stripe payment {payment_intent_id})",
    )
    ledger.balance.auto_top_up_armed = True
    ledger.balance.save(update_fields=["auto_top_up_armed"])
    ledger.save()
    purchase.grant, purchase.status, purchase.paid_at = grant, PurchaseStatus.PAID, now
    purchase.payment_intent_id = payment_intent_id
    purchase.save(update_fields=["grant", "status", "paid_at", "payment_intent_id", "updated_at"])
    record_audit(
        actor=actor,
        action="credits.purchased",
        category=AuditCategory.CREDITS,
        org_id=purchase.org_id,
        after={
            "grant": grant.public_id,
            "credits": str(purchase.credits),
            "payment_intent": payment_intent_id,
        },
    )


def record_refund(*, charge_id: str, actor: Actor) -> CreditPurchase | None:
    """charge.refunded: take back the refunded share of a purchase's credits.

    The charge is read from Stripe; its `amount_refunded` is cumulative, so each decision covers what
    was refunded since the last one and an older copy (or a replay) changes nothing. Under the credit
    lock: the unspent part leaves with an `adjustment` entry; what was already spent is recorded as
    owed on the purchase. Audited. None: the charge paid no purchase.
    """
    charge: Any = stripe_api.retrieve_charge(charge_id)
    found = (
        CreditPurchase.objects.filter(payment_intent_id=charge["payment_intent"] or "-")
        .values_list("pk", "org_id")
        .first()
    )
    if found is None:
        return None
    with transaction.atomic():
        ledger = open_ledger(found[1])
        purchase = CreditPurchase.objects.select_for_update().get(pk=found[0])
        refunded = min(int(charge["amount_refunded"]), purchase.amount_cents)
        if refunded <= purchase.refunded_cents or purchase.grant_id is None:
            return purchase
        share = (purchase.credits * refunded / purchase.amount_cents).quantize(CREDIT_PLACES)
        due = share - purchase.clawed_back - purchase.owed
        taken = ledger.take_back(purchase.grant_id, due, reference=f"refund:{charge_id}:{refunded}")
        ledger.save()
        before = {"refunded_cents": purchase.refunded_cents, "owed": str(purchase.owed)}
        purchase.refunded_cents, purchase.status = refunded, PurchaseStatus.REFUNDED
        purchase.clawed_back += taken
        purchase.owed += due - taken
        purchase.save(update_fields=["refunded_cents", "status", "clawed_back", "owed", "updated_at"])
        record_audit(
            actor=actor,
            action="credits.purchase_refunded",
            category=AuditCategory.CREDITS,
            org_id=purchase.org_id,
            before=before,
            after={"refunded_cents": refunded, "clawed_back": str(taken), "owed": str(purchase.owed)},
        )
    return purchase
