"""credits.low and credits.exhausted: told to products when the available balance crosses a line.

Emitted on the crossing only, never on every debit: `credits.low` when a debit or a reserve takes
the available balance from at least 10 % of the plan's monthly credits to below it, and
`credits.exhausted` when it takes it from above 0 to 0 or less on a plan without overage. A grant
that lifts the balance back re-arms both. Expiring grants (the month's end, when the new allowance
follows at once) emit nothing: nothing was consumed. Both are cheap on the ingest path: the balances
are already in hand under the credit lock, the holds are read in the same statement, and only a
crossing writes anything.
"""

from datetime import datetime
from decimal import Decimal

from billing.credits import credits_str
from billing.models import Plan
from orgs.models import EventType
from orgs.services.events import emit_event

LOW_SHARE = Decimal("0.1")


def emit_credit_crossings(
    *, org_id: int, plan: Plan, before: Decimal, after: Decimal, now: datetime | None = None
) -> list[str]:
    """Emit the events the move of the available balance from `before` to `after` crosses; returns
    their types. Call in the transaction of the credit write, under the org's credit lock."""
    crossed: list[str] = []
    if after >= before:
        return crossed
    threshold = plan.monthly_credits * LOW_SHARE
    data = {
        "balance": credits_str(after),
        "previous_balance": credits_str(before),
        "plan": plan.name,
        "monthly_credits": credits_str(plan.monthly_credits),
        "overage_allowed": plan.overage_allowed,
    }
    if plan.monthly_credits > 0 and before >= threshold > after:
        emit_event(
            org_id=org_id,
            event_type=EventType.CREDITS_LOW,
            data={**data, "threshold": credits_str(threshold)},
            now=now,
        )
        crossed.append(EventType.CREDITS_LOW)
    if not plan.overage_allowed and before > 0 >= after:
        emit_event(org_id=org_id, event_type=EventType.CREDITS_EXHAUSTED, data=data, now=now)
        crossed.append(EventType.CREDITS_EXHAUSTED)
    return crossed


NEAR_CAP_SHARE = Decimal("0.8")


def emit_spend_cap_near(
    *, org_id: int, cap: Decimal | None, before: Decimal, after: Decimal, now: datetime | None = None
) -> bool:
    """spend_cap.near when this month's overage (with active holds) moves from below 80 % of the
    org's spend cap to at least that; once per crossing. Call under the org's credit lock."""
    if cap is None or cap <= 0:
        return False
    threshold = cap * NEAR_CAP_SHARE
    if not before < threshold <= after:
        return False
    data = {
        "monthly_overage_credits": credits_str(cap),
        "month_overage": credits_str(after),
        "previous_month_overage": credits_str(before),
        "threshold": credits_str(threshold),
    }
    emit_event(org_id=org_id, event_type=EventType.SPEND_CAP_NEAR, data=data, now=now)
    return True
