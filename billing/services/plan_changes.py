"""Plan changes of an org with a subscription: asked here, performed at Stripe through the outbox.

Upgrades take effect at once (Stripe prorates and invoices the difference now: always_invoice);
downgrades at the period end (a subscription schedule whose second phase holds the lower plan's
prices); a change to the default plan ends the subscription at the period end
(cancel_at_period_end). The plan here still changes only in `sync_plan`, from the subscription
Stripe lists: a PlanChange row only says what was asked and until when it is pending.
"""

from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from billing import stripe_api
from billing.exceptions import IdempotencyConflict, NoSubscription, PlanUnchanged, StripeCatalogMissing
from billing.models import Plan, PlanChange, PlanChangeKind, PlanChangeStatus
from billing.selectors import pending_plan_change
from billing.services.checkout import require_billing_role
from billing.services.payments import customer_id_for, lock_account, plan_for_subscriptions, sync_plan
from billing.subscriptions import BILLING_STATUSES, CANCEL_FOR_PLAN_CHANGE, CANCEL_REASON_KEY
from orgs.models import AuditCategory, Organization
from orgs.services.audit import Actor, record_audit
from orgs.services.outbox import enqueue_outbox

CHANGE_PLAN = "stripe.subscription.change_plan"


def request_plan_change(
    *,
    org: Organization,
    plan_name: str,
    idempotency_key: str,
    actor: Actor,
    user_id: str = "",
    reason: str = "",
) -> PlanChange:
    """Ask for the org's move to `plan_name`; the Stripe write is an outbox message (CHANGE_PLAN).

    Idempotent on (org, idempotency_key): the same key answers the same change (another plan with it
    is idempotency_conflict). Under the account lock: the live subscription is read from Stripe
    (none: no_subscription); the plan it gives, or the plan a pending change moves to, equal to
    `plan_name` is plan_unchanged. A pending change is superseded by the new one. Members need an
    owner, admin or billing role (`user_id`); staff pass none and give a `reason`. Audited.
    """
    if user_id:
        require_billing_role(org=org, user_id=user_id)
    plan = Plan.objects.get(name=plan_name)
    if not plan.is_default and not plan.stripe_price_id:
        raise StripeCatalogMissing(details={"plan": plan.name})
    with transaction.atomic():
        lock_account(org)
        existing = PlanChange.objects.filter(org=org, idempotency_key=idempotency_key).first()
        if existing is not None:
            if existing.to_plan_id != plan.pk:
                raise IdempotencyConflict(details={"idempotency_key": idempotency_key})
            return existing
        subscription = live_subscription(org)
        in_force = plan_for_subscriptions([subscription])
        pending = pending_plan_change(org)
        if plan.pk == (pending.to_plan_id if pending else in_force.pk):
            raise PlanUnchanged(details={"plan": plan.name})
        PlanChange.objects.filter(org=org, status=PlanChangeStatus.PENDING).update(
            status=PlanChangeStatus.SUPERSEDED, updated_at=timezone.now()
        )
        change = _record_change(
            org=org,
            subscription=subscription,
            in_force=in_force,
            plan=plan,
            user_id=user_id,
            reason=reason,
            idempotency_key=idempotency_key,
        )
        enqueue_outbox(
            kind=CHANGE_PLAN, payload={"plan_change_id": change.pk}, idempotency_key=_key(change), org=org
        )
        record_audit(
            actor=actor,
            action="billing.plan_change_requested",
            category=AuditCategory.BILLING,
            org=org,
            subscription_id=subscription["id"],
            before={"plan": in_force.name, "pending_plan": pending.to_plan.name if pending else None},
            after={"plan": plan.name, "kind": change.kind, "effective_at": change.effective_at.isoformat()},
            reason=reason,
        )
    return change


def _record_change(
    *,
    org: Organization,
    subscription: Any,
    in_force: Plan,
    plan: Plan,
    user_id: str,
    reason: str,
    idempotency_key: str,
) -> PlanChange:
    kind = _kind(in_force=in_force, target=plan)
    period_end = datetime.fromtimestamp(subscription["items"]["data"][0]["current_period_end"], tz=UTC)
    at_once = kind in (PlanChangeKind.UPGRADE, PlanChangeKind.REVERT)
    return PlanChange.objects.create(
        org=org,
        from_plan=in_force,
        to_plan=plan,
        kind=kind,
        subscription_id=subscription["id"],
        effective_at=timezone.now() if at_once else period_end,
        user_id=user_id,
        reason=reason,
        idempotency_key=idempotency_key,
    )


def live_subscription(org: Organization) -> Any:
    """The org's subscription that still bills (the one giving the highest plan), or no_subscription."""
    customer_id = customer_id_for(org)
    live = [
        s
        for s in (stripe_api.list_subscriptions(customer_id=customer_id) if customer_id else [])
        if s["status"] in BILLING_STATUSES
    ]
    if not live:
        raise NoSubscription(details={"org_id": org.public_id})
    return max(live, key=lambda s: plan_for_subscriptions([s]).rank)


def _kind(*, in_force: Plan, target: Plan) -> PlanChangeKind:
    if target.pk == in_force.pk:
        return PlanChangeKind.REVERT
    if not target.stripe_price_id:
        return PlanChangeKind.CANCEL
    return PlanChangeKind.UPGRADE if target.rank > in_force.rank else PlanChangeKind.DOWNGRADE


def _key(change: PlanChange) -> str:
    return f"plan-change:{change.org_id}:{change.pk}"


def perform_plan_change(*, change_id: int, actor: Actor) -> dict[str, Any]:
    """The outbox message CHANGE_PLAN: make Stripe's subscription move to the change's plan.

    Under the account lock; a change no longer pending (superseded, done) is skipped. Whatever an
    earlier change left pending at Stripe (our schedule, our cancel_at_period_end) is undone first,
    then: an upgrade swaps the items at once (always_invoice); a downgrade sets a schedule; the
    default plan cancels at the period end; the plan in force marks it done. Each write carries an
    idempotency key from the change's row, so a retried message repeats nothing. A refusal marks the
    change failed (the message is performed: retrying cannot help). The plan is then synced from
    Stripe (sync_plan), which marks the change done when the subscription gives its plan.
    """
    with transaction.atomic():
        change = PlanChange.objects.select_related("org", "to_plan").get(pk=change_id)
        lock_account(change.org)
        change.refresh_from_db(fields=["status"])
        if change.status != PlanChangeStatus.PENDING:
            return {"skipped": change.status}
        try:
            done = _write_to_stripe(change)
        except stripe_api.StripeRefused as error:
            change.status, change.error = PlanChangeStatus.FAILED, error.message
            change.save(update_fields=["status", "error", "updated_at"])
            return {"failed": error.message}
        if done:
            change.status = PlanChangeStatus.DONE
            change.save(update_fields=["status", "updated_at"])
    sync_plan(org=change.org, actor=actor)
    return {"plan_change": change.pk, "kind": change.kind}


def _write_to_stripe(change: PlanChange) -> bool:
    """The Stripe writes of one change; True when nothing is left to wait for (a revert)."""
    key = _key(change)
    subscription = stripe_api.retrieve_subscription(change.subscription_id)
    if subscription["status"] not in BILLING_STATUSES:
        raise stripe_api.StripeRefused("The subscription has ended.", details={"stripe_code": "ended"})
    if subscription["schedule"]:
        stripe_api.release_schedule(schedule_id=subscription["schedule"], idempotency_key=f"{key}:release")
    if (
        subscription["cancel_at_period_end"]
        and (subscription["metadata"] or {}).get(CANCEL_REASON_KEY) == CANCEL_FOR_PLAN_CHANGE
    ):
        stripe_api.set_cancel_at_period_end(
            subscription_id=subscription["id"],
            cancel=False,
            metadata={CANCEL_REASON_KEY: ""},
            idempotency_key=f"{key}:keep",
        )
    target = change.to_plan
    in_force = plan_for_subscriptions([subscription])
    if target.pk == in_force.pk:
        return True
    if not target.stripe_price_id:
        stripe_api.set_cancel_at_period_end(
            subscription_id=subscription["id"],
            cancel=True,
            metadata={CANCEL_REASON_KEY: CANCEL_FOR_PLAN_CHANGE},
            idempotency_key=f"{key}:cancel",
        )
    elif target.rank > in_force.rank:
        stripe_api.change_subscription_items(
            subscription_id=subscription["id"],
            items=_swapped_items(subscription, in_force=in_force, target=target),
            idempotency_key=f"{key}:upgrade",
        )
    else:
        _schedule_downgrade(subscription, target=target, key=key)
    return False


def plan_prices(plan: Plan) -> list[dict[str, Any]]:
    """The plan's items: its monthly price (quantity 1) and, with overage, its metered price."""
    items: list[dict[str, Any]] = [{"price": plan.stripe_price_id, "quantity": 1}]
    if plan.overage_allowed and plan.stripe_overage_price_id:
        items.append({"price": plan.stripe_overage_price_id})
    return items


def _swapped_items(subscription: Any, *, in_force: Plan, target: Plan) -> list[dict[str, Any]]:
    """Item updates moving the subscription from `in_force`'s prices to `target`'s, in place."""
    updates: list[dict[str, Any]] = []
    overage_placed = False
    for item in subscription["items"]["data"]:
        price_id = item["price"]["id"]
        if price_id == in_force.stripe_price_id:
            updates.append({"id": item["id"], "price": target.stripe_price_id, "quantity": 1})
        elif price_id == in_force.stripe_overage_price_id:
            if target.overage_allowed and target.stripe_overage_price_id:
                updates.append({"id": item["id"], "price": target.stripe_overage_price_id})
                overage_placed = True
            else:
                updates.append({"id": item["id"], "deleted": True})
    if target.overage_allowed and target.stripe_overage_price_id and not overage_placed:
        updates.append({"price": target.stripe_overage_price_id})
    return updates


def _schedule_downgrade(subscription: Any, *, target: Plan, key: str) -> None:
    """A schedule from the subscription: this period as it is, then the lower plan's prices."""
    schedule = stripe_api.schedule_from_subscription(
        subscription_id=subscription["id"], idempotency_key=f"{key}:schedule"
    )
    current = schedule["phases"][0]
    keep = [
        {"price": item["price"], **({"quantity": item["quantity"]} if item["quantity"] else {})}
        for item in current["items"]
    ]
    stripe_api.set_schedule_phases(
        schedule_id=schedule["id"],
        phases=[
            {"items": keep, "start_date": current["start_date"], "end_date": current["end_date"]},
            {"items": plan_prices(target), "duration": {"interval": "month", "interval_count": 1}},
        ],
        idempotency_key=f"{key}:phases",
    )
