"""Holds: reserve credits before an operation, release them if it does not happen.

(Committing a hold records usage, so it lives with usage: usage.services.holds.)
"""

from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from billing.entitlements import Decision, decide
from billing.exceptions import EntitlementDenied, HoldNotActive, HoldNotFound, IdempotencyConflict
from billing.models import CreditBalance, Hold, HoldState, Plan
from billing.pricing import bounded_cost, fingerprint
from billing.selectors import entitlement_state
from billing.services.credit_events import emit_credit_crossings, emit_spend_cap_near
from orgs.exceptions import OrgNotFound
from orgs.models import Organization, Product


def reserve_credits(
    *,
    org_id: str,
    product: Product,
    user_id: str,
    metric: str,
    quantity: Decimal,
    idempotency_key: str,
    ttl_seconds: int,
    now: datetime | None = None,
) -> tuple[Hold, bool, Decision | None]:
    """Decide like the entitlement check and, when allowed, hold the cost; returns (hold, created,
    decision). One transaction under the org's credit lock, so concurrent reserves never together
    exceed the available balance of a plan without overage. The same key again returns the same
    hold (created=False); with another body it raises IdempotencyConflict. Denials raise
    EntitlementDenied and write nothing.
    """
    now = now or timezone.now()
    body = fingerprint(
        {
            "org_id": org_id,
            "user_id": user_id,
            "metric": metric,
            "quantity": quantity,
            "ttl_seconds": ttl_seconds,
        }
    )
    org = Organization.live.filter(public_id=org_id).only("pk").first()
    if org is None:
        raise OrgNotFound(details={"org_id": org_id})
    with transaction.atomic():
        # The credit lock: reserves of one org decide one at a time, each seeing the others' holds.
        CreditBalance.objects.select_for_update().filter(org_id=org.pk).get()
        existing = Hold.objects.filter(product=product, org=org, idempotency_key=idempotency_key).first()
        if existing is not None:
            if existing.request_fingerprint != body:
                raise IdempotencyConflict(details={"idempotency_key": idempotency_key})
            return existing, False, None
        state = entitlement_state(org_id=org_id, product=product, user_id=user_id, metric=metric, now=now)
        decision = decide(state, quantity=quantity, cost=bounded_cost(quantity, state.credits_per_unit))
        if not decision.allowed:
            raise EntitlementDenied(decision)
        hold = Hold.objects.create(
            org=org,
            product=product,
            metric_id=state.metric_id,
            user_id=user_id,
            quantity=quantity,
            cost=decision.cost,
            idempotency_key=idempotency_key,
            request_fingerprint=body,
            expires_at=now + timedelta(seconds=ttl_seconds),
        )
        _emit_crossings(org.pk, decision, now=now)
    return hold, True, decision


def _emit_crossings(org_id: int, decision: Decision, *, now: datetime) -> None:
    """The hold takes its cost from the available balance at once: that may cross a line."""
    if decision.cost > 0:
        before = decision.state.available
        plan = Plan.objects.get(name=decision.state.plan)
        emit_credit_crossings(org_id=org_id, plan=plan, before=before, after=before - decision.cost, now=now)
        state = decision.state
        emit_spend_cap_near(
            org_id=org_id,
            cap=state.spend_cap,
            before=state.overage_after(Decimal(0)),
            after=state.overage_after(decision.cost),
            now=now,
        )


def get_product_hold(*, product: Product, hold_id: str, lock: bool = False) -> Hold:
    """The product's own hold; another product's hold does not exist for it."""
    holds = Hold.objects.select_for_update() if lock else Hold.objects
    hold = holds.filter(public_id=hold_id, product=product).first()
    if hold is None:
        raise HoldNotFound(details={"hold_id": hold_id})
    return hold


def release_hold(*, product: Product, hold_id: str) -> Hold:
    """Release an active hold; releasing a released hold is harmless; a committed one raises."""
    with transaction.atomic():
        hold = get_product_hold(product=product, hold_id=hold_id, lock=True)
        if hold.state == HoldState.COMMITTED:
            raise HoldNotActive(details={"hold_id": hold_id, "state": hold.state})
        if hold.state == HoldState.ACTIVE:
            hold.state, hold.ended_at = HoldState.RELEASED, timezone.now()
            hold.save(update_fields=["state", "ended_at"])
    return hold
