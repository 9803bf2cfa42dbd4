"""Debiting usage: the credit write every accepted usage event makes, in the transaction storing it."""

from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from billing.periods import month_of
from billing.selectors import AllowanceDue, allowances_due
from billing.services.allowances import ensure_allowances
from billing.services.auto_top_up import top_up_on_crossing
from billing.services.credit_events import emit_credit_crossings, emit_spend_cap_near
from billing.services.ledger import ZERO, OrgLedger, open_ledgers, save_ledgers
from orgs.services.audit import Actor


def debit_usage(
    *,
    costs_by_org: dict[int, list[tuple[int, Decimal]]],
    reference: str,
    now: datetime | None = None,
    ending_holds: dict[int, Decimal] | None = None,
) -> dict[int, tuple[Decimal, bool]]:
    """Debit each org once for its events' costs, drawn in the order given; returns {event key:
    (overage, billable)} for the events credits did not fully cover. Call in the transaction storing
    the events.

    The month's allowance is granted first if it is still due, so usage at 00:00:30 on the first is
    covered by the new month's credits however late the allowance job runs. Overage is billable
    (through Stripe's meter) when the org's plan allows overage now, at the debit; its billable part
    becomes billed debt, the only debt a later settlement zeroes. A debit that takes the available
    balance across a line emits credits.low / credits.exhausted (billing/services/credit_events.py);
    `ending_holds` are the costs of holds this write commits (they stop counting as held).
    """
    now = now or timezone.now()
    ledgers = open_ledgers(costs_by_org, now=now)
    due = allowances_due(costs_by_org, now=now)
    ensure_allowances(ledgers, now=now, actor=Actor.system("monthly_allowance"), due=due)
    before = {org_id: ledger.posted for org_id, ledger in ledgers.items()}
    overage_before = {org_id: _month_overage(ledger, now) for org_id, ledger in ledgers.items()}
    overages: dict[int, tuple[Decimal, bool]] = {}
    for org_id, costs in costs_by_org.items():
        ledger = ledgers[org_id]
        billable = due[org_id].account.plan.overage_allowed
        total = covered_total = ZERO
        for key, cost in costs:
            covered, overage = ledger.draw(cost)
            total += cost
            covered_total += covered
            if overage > 0:
                overages[key] = (overage, billable)
        ledger.debit(
            cost=total,
            covered=covered_total,
            billable=total - covered_total if billable else ZERO,
            reference=reference,
        )
    save_ledgers(ledgers.values())
    _after_debits(ledgers, due, before, overage_before, ending=ending_holds or {}, now=now)
    return overages


def _month_overage(ledger: OrgLedger, now: datetime) -> Decimal:
    balance = ledger.balance
    return balance.month_overage if balance.overage_month == month_of(now) else ZERO


def _after_debits(
    ledgers: dict[int, OrgLedger],
    due: dict[int, AllowanceDue],
    before: dict[int, Decimal],
    overage_before: dict[int, Decimal],
    *,
    ending: dict[int, Decimal],
    now: datetime,
) -> None:
    """Automatic top-ups, then the events (last, in org id order: orgs/services/events.py)."""
    available = {
        org_id: (
            before[org_id] - due[org_id].held,
            ledger.posted - (due[org_id].held - ending.get(org_id, ZERO)),
        )
        for org_id, ledger in ledgers.items()
    }
    for org_id, (was, now_available) in available.items():
        top_up_on_crossing(balance=ledgers[org_id].balance, before=was, after=now_available)
    for org_id in sorted(ledgers):
        was, now_available = available[org_id]
        emit_credit_crossings(
            org_id=org_id, plan=due[org_id].account.plan, before=was, after=now_available, now=now
        )
        emit_spend_cap_near(
            org_id=org_id,
            cap=ledgers[org_id].balance.monthly_overage_cap,
            before=overage_before[org_id],
            after=_month_overage(ledgers[org_id], now),
            now=now,
        )
