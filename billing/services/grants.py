"""Credit grants made by products (API) and staff (admin)."""

from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing.exceptions import GrantLimitExceeded, IdempotencyConflict
from billing.models import CreditGrant, GrantType
from billing.pricing import fingerprint
from billing.services.allowances import ensure_allowances
from billing.services.ledger import grant_snapshot, open_ledger
from orgs.models import ActorType, AuditCategory, Organization
from orgs.services.audit import Actor, record_audit

GRANTABLE = [GrantType.BONUS, GrantType.PROMOTIONAL, GrantType.PURCHASE, GrantType.ADJUSTMENT]


def grant_limit_for(actor: Actor) -> Decimal | None:
    """The largest grant this actor may make; None means no limit."""
    if actor.type == ActorType.PRODUCT:
        assert actor.product is not None  # Actor.for_product names it
        return actor.product.grant_limit
    if actor.type == ActorType.STAFF:
        assert actor.user is not None  # Actor.staff names them
        if not actor.user.has_perm("billing.grant_unlimited_credits"):
            return settings.SUPPORT_CREDIT_GRANT_LIMIT
    return None


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
        now = timezone.now()
        ledger = open_ledger(org.pk, now=now)
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
        # The month's allowance first, as for any credit write; then the billed debt is settled: that
        # overage is invoiced, so it must not also eat the new credits.
        ensure_allowances({org.pk: ledger}, now=now, actor=actor)
        ledger.settle(reference=f"before-grant:{idempotency_key or now.isoformat()}")
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
