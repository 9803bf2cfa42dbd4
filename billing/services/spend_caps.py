"""Spend caps: the most billable overage an org lets its products run up in a month."""

from decimal import Decimal

from django.db import transaction

from billing.models import CreditBalance
from billing.services.checkout import require_billing_role
from orgs.models import AuditCategory, Organization
from orgs.services.audit import Actor, record_audit


def set_spend_cap(
    *, org: Organization, monthly_overage_credits: Decimal | None, user_id: str, actor: Actor
) -> CreditBalance:
    """Set (or, with None, remove) the org's monthly overage cap, under its credit lock, audited when it
    changes; setting the same cap again writes nothing. Owner, admin or billing members only.

    The cap is read by the entitlement check and by reserves, which decide under the same lock: no set
    of concurrent reserves passes it. Usage reported without a reserve is still recorded and billed.
    """
    require_billing_role(org=org, user_id=user_id)
    with transaction.atomic():
        balance = CreditBalance.objects.select_for_update().get(org=org)
        before = balance.monthly_overage_cap
        if before != monthly_overage_credits:
            balance.monthly_overage_cap = monthly_overage_credits
            balance.save(update_fields=["monthly_overage_cap", "updated_at"])
            record_audit(
                actor=actor,
                action="credits.spend_cap_set",
                category=AuditCategory.CREDITS,
                org=org,
                before={"monthly_overage_credits": _text(before)},
                after={"monthly_overage_credits": _text(monthly_overage_credits)},
            )
    return balance


def _text(value: Decimal | None) -> str | None:
    return f"{value:.6f}" if value is not None else None
