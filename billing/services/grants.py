"""Credit grants made by products (API) and staff (admin)."""

from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing.exceptions import GrantLimitExceeded
from billing.models import CreditGrant, GrantType, Plan
from billing.pricing import fingerprint
from billing.services.ledger import OrgLedger, open_ledger
from orgs.exceptions import IdempotencyConflict
from orgs.models import ActorType, AuditCategory, Organization
from orgs.services.audit import Actor, record_audit

GRANTABLE = [GrantType.BONUS, GrantType.PROMOTIONAL, GrantType.PURCHASE, GrantType.ADJUSTMENT]


def grant_limit_for(actor: Actor) -> Decimal | None:
    """The largest grant this actor may make; None means no limit."""
    if actor.type == ActorType.PRODUCT:
        return actor.product.grant_limit
    if actor.type == ActorType.STAFF and not actor.user.has_perm("billing.grant_unlimited_credits"):
        return settings.SUPPORT_CREDIT_GRANT_LIMIT
    return None


def settle_if_overage_plan(ledger: OrgLedger, *, reference: str) -> None:
    """Before crediting an org whose plan bills overage through Stripe, zero its negative balance:
    that overage is (or will be) invoiced, so it must not also eat the new credits."""
    if Plan.objects.filter(accounts__org_id=ledger.balance.org_id, overage_allowed=True).exists():
        ledger.settle(reference=reference)


def grant_snapshot(grant: CreditGrant) -> dict:
    return {
        "id": grant.public_id,
        "grant_type": grant.grant_type,
        "amount": str(grant.amount),
        "expires_at": grant.expires_at.isoformat() if grant.expires_at else None,
    }


def grant_credits(
    *,
    org: Organization,
    amount: Decimal,
    grant_type: GrantType,
    reason: str,
    actor: Actor,
    expires_at: datetime | None = None,
    idempotency_key: str = "",
) -> tuple[CreditGrant, bool]:
    """Grant credits in one transaction; returns (grant, created).

    With an idempotency key (scoped to the product and org), the same request again returns the
    original grant and writes nothing; the same key with another body raises IdempotencyConflict.
    """
    if grant_type not in GRANTABLE:
        raise ValueError(f"{grant_type!r} credits are not granted by hand.")
    product = actor.product if actor.type == ActorType.PRODUCT else None
    body = fingerprint(
        {"amount": amount, "grant_type": grant_type, "reason": reason, "expires_at": expires_at}
    )
    with transaction.atomic():
        # The credit lock also serializes two requests that carry the same key.
        ledger = open_ledger(org.pk)
        if idempotency_key:
            existing = CreditGrant.objects.filter(
                org=org, product=product, idempotency_key=idempotency_key
            ).first()
            if existing is not None:
                if existing.request_fingerprint != body:
                    raise IdempotencyConflict(details={"idempotency_key": idempotency_key})
                return existing, False
        limit = grant_limit_for(actor)
        if limit is not None and amount > limit:
            raise GrantLimitExceeded(details={"amount": str(amount), "grant_limit": str(limit)})
        settle_if_overage_plan(
            ledger, reference=f"before-grant:{idempotency_key or timezone.now().isoformat()}"
        )
        grant = ledger.add_grant(
            org=org,
            grant_type=grant_type,
            amount=amount,
            expires_at=expires_at,
            reason=reason,
            product=product,
            idempotency_key=idempotency_key,
            request_fingerprint=body if idempotency_key else "",
        )
        ledger.save()
        record_audit(
            actor=actor,
            action="credits.granted",
            category=AuditCategory.CREDITS,
            org=org,
            after=grant_snapshot(grant),
            reason=reason,
        )
    return grant, True
