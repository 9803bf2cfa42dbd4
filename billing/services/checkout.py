"""Checkout: an org subscribes to a paid plan through Stripe Checkout (subscription mode)."""

from django.db import transaction

from billing import stripe_api
from billing.exceptions import CheckoutNotAMember, InsufficientRole, StripeCatalogMissing, SubscriptionExists
from billing.models import CheckoutSession, CheckoutStatus, Plan
from billing.services.payments import customer_id_for, lock_account, sync_plan
from billing.subscriptions import BILLING_STATUSES
from orgs.models import AuditCategory, Membership, Organization, Role
from orgs.services.audit import Actor, record_audit

CHECKOUT_ROLES = {Role.OWNER, Role.ADMIN, Role.BILLING}


def require_billing_role(*, org: Organization, user_id: str) -> None:
    """The user is an owner, admin or billing member of the org: not_a_member / insufficient_role."""
    role = Membership.objects.filter(org=org, user_id=user_id).values_list("role", flat=True).first()
    if role is None:
        raise CheckoutNotAMember(details={"user_id": user_id})
    if role not in CHECKOUT_ROLES:
        raise InsufficientRole(details={"role": role})


def ensure_customer(org: Organization) -> str:
    """The org's Stripe customer id, created on first need and linked to the org through dj-stripe."""
    from djstripe.models import Customer

    customer_id = customer_id_for(org)
    if customer_id is None:
        customer = stripe_api.create_customer(org=org)
        Customer.sync_from_stripe_data(customer, api_key=stripe_api._options()["api_key"])
        customer_id = customer["id"]
    return customer_id


def start_checkout(
    *, org: Organization, plan_name: str, user_id: str, success_url: str, cancel_url: str, actor: Actor
) -> CheckoutSession:
    """Start a Checkout session for the org's subscription to `plan_name`; not idempotent (each call
    opens a new session and expires the org's previous open one).

    Runs under the org's billing-account lock, so two checkouts of one org never both stay open.
    A live subscription, or a previous session that Stripe reports complete, is SubscriptionExists
    and opens nothing (the completed session is recorded as such, committed). Stripe writes carry
    idempotency keys derived from our rows.
    """
    require_billing_role(org=org, user_id=user_id)
    plan = Plan.objects.get(name=plan_name)
    # A plan without overage has no metered price: its monthly price alone is sold.
    if not plan.stripe_price_id or (plan.overage_allowed and not plan.stripe_overage_price_id):
        raise StripeCatalogMissing(details={"plan": plan.name})

    with transaction.atomic():
        # Committed on its own: a refused checkout must not forget the customer Stripe now has.
        lock_account(org)
        customer_id = ensure_customer(org)
    with transaction.atomic():
        lock_account(org)
        live = [
            s["id"]
            for s in stripe_api.list_subscriptions(customer_id=customer_id)
            if s["status"] in BILLING_STATUSES
        ]
        if live:
            raise SubscriptionExists(details={"subscriptions": live})
        # The race: the customer can still pay a previous session after the list above answered
        # (Stripe creates the subscription at completion; our webhook may not have arrived). Its
        # expire is then refused and Stripe says complete: a second session would become a second
        # subscription and a second plan fee, so that ends here.
        completed = [_close(previous) for previous in _open_sessions(org)]
        completed = [session for session in completed if session.status == CheckoutStatus.COMPLETE]
        if not completed:
            return _open_session(
                org=org,
                plan=plan,
                user_id=user_id,
                customer_id=customer_id,
                success_url=success_url,
                cancel_url=cancel_url,
                actor=actor,
            )
    # Outside the block, so the completed session's row stays recorded while nothing else is written.
    raise SubscriptionExists(
        details={
            "subscriptions": [s.subscription_id for s in completed if s.subscription_id],
            "checkout_sessions": [s.stripe_id for s in completed],
        }
    )


def _open_sessions(org: Organization) -> list[CheckoutSession]:
    return list(CheckoutSession.objects.filter(org=org, status=CheckoutStatus.OPEN).order_by("pk"))


def _open_session(
    *,
    org: Organization,
    plan: Plan,
    user_id: str,
    customer_id: str,
    success_url: str,
    cancel_url: str,
    actor: Actor,
) -> CheckoutSession:
    """Create the session at Stripe and record it open, audited; call under the account lock."""
    session = CheckoutSession.objects.create(org=org, plan=plan, user_id=user_id)
    stripe_session = stripe_api.create_checkout_session(
        customer_id=customer_id,
        prices=[plan.stripe_price_id, *([plan.stripe_overage_price_id] if plan.overage_allowed else [])],
        success_url=success_url,
        cancel_url=cancel_url,
        metadata={"org_id": org.public_id, "plan": plan.name, "checkout": str(session.pk)},
        idempotency_key=f"checkout:{session.pk}",
    )
    session.stripe_id, session.url, session.status = (
        stripe_session["id"],
        stripe_session["url"],
        CheckoutStatus.OPEN,
    )
    session.save(update_fields=["stripe_id", "url", "status", "updated_at"])
    record_audit(
        actor=actor,
        action="billing.checkout_started",
        category=AuditCategory.BILLING,
        org=org,
        after={"session": session.stripe_id, "plan": plan.name, "user_id": user_id},
    )
    return session


def _close(session: CheckoutSession) -> CheckoutSession:
    """Expire an open session at Stripe; one that completed or expired meanwhile is recorded as such.

    A refused expire of a session Stripe still holds open is raised: recording it expired would
    leave two payable sessions.
    """
    try:
        stripe_api.expire_checkout_session(session.stripe_id)
        session.status = CheckoutStatus.EXPIRED
    except stripe_api.StripeRefused:
        current = stripe_api.retrieve_checkout_session(session.stripe_id)
        if current["status"] == "open":
            raise
        if current["status"] == "complete":
            session.status = CheckoutStatus.COMPLETE
            session.subscription_id = current["subscription"] or ""
        else:
            session.status = CheckoutStatus.EXPIRED
    session.save(update_fields=["status", "subscription_id", "updated_at"])
    return session


def record_checkout_completed(
    *, session_id: str, customer_id: str, subscription_id: str, actor: Actor
) -> Plan:
    """checkout.session.completed: link the subscription Stripe created, then recompute the plan.
    Never creates a subscription. Idempotent."""
    from billing.services.payments import org_for_customer

    org = org_for_customer(customer_id)
    CheckoutSession.objects.filter(stripe_id=session_id).exclude(status=CheckoutStatus.COMPLETE).update(
        status=CheckoutStatus.COMPLETE, subscription_id=subscription_id or ""
    )
    return sync_plan(org=org, actor=actor)
