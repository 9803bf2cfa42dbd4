"""The credit ledger: the one place that moves credits.

Every write locks the org's CreditBalance row first (the credit lock), appends ledger entries and
updates the balance row in the same transaction, so the two always agree. Debits draw from the
grants that expire soonest. Expired grants leave by an `expiry` entry as soon as anything takes the
lock, and the expire_credit_grants job takes them out for orgs with no activity.

Invariant (checked by check_ledger_consistency): posted == sum of the ledger, and the live grants'
remaining credits == max(posted, 0). A negative balance is credit used beyond every grant: on an
overage plan it was billed through Stripe and is settled before the next grant; otherwise the next
grant pays it first.
"""

import logging
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from billing.models import CreditBalance, CreditGrant, EntryType, LedgerDrift, LedgerEntry
from billing.selectors import drifted_balances

logger = logging.getLogger(__name__)

ZERO = Decimal("0")


def _expiry_order(grant: CreditGrant):
    # Soonest expiry first, grants that never expire last, then the oldest.
    return (grant.expires_at is None, grant.expires_at or grant.created_at, grant.pk)


@dataclass
class OrgLedger:
    """One org's balance and live grants, locked for the rest of the transaction."""

    balance: CreditBalance
    now: object
    grants: list[CreditGrant] = field(default_factory=list)  # live, soonest-expiring first
    entries: list[LedgerEntry] = field(default_factory=list)
    changed: dict[int, CreditGrant] = field(default_factory=dict)

    @property
    def posted(self) -> Decimal:
        return self.balance.posted

    def _append(self, entry_type: EntryType, amount: Decimal, **fields) -> None:
        self.balance.posted += amount
        self.entries.append(
            LedgerEntry(
                org_id=self.balance.org_id,
                entry_type=entry_type,
                amount=amount,
                balance_after=self.balance.posted,
                **fields,
            )
        )

    def expire(self, grant: CreditGrant) -> None:
        amount = grant.remaining
        grant.remaining, grant.expired_at = ZERO, self.now
        self.changed[grant.pk] = grant
        self._append(EntryType.EXPIRY, -amount, grant=grant, reference=f"expiry:{grant.public_id}")

    def settle(self, *, reference: str) -> Decimal:
        """Zero a negative balance: overage already billed through Stripe is not owed in credits."""
        if self.posted >= 0:
            return ZERO
        amount = -self.posted
        self._append(EntryType.SETTLEMENT, amount, reference=reference)
        return amount

    def add_grant(self, **fields) -> CreditGrant:
        """Create and post a grant. A negative balance (credits owed) is paid from it first."""
        amount = fields["amount"]
        grant = CreditGrant.objects.create(**fields, remaining=max(amount - max(-self.posted, ZERO), ZERO))
        self._append(EntryType.GRANT, amount, grant=grant, reference=f"grant:{grant.public_id}")
        if grant.remaining > 0:
            self.grants.append(grant)
            self.grants.sort(key=_expiry_order)
        return grant

    def draw(self, cost: Decimal) -> tuple[Decimal, Decimal]:
        """Take `cost` from the soonest-expiring grants; returns (covered, overage). Post with debit()."""
        covered = ZERO
        for grant in self.grants:
            take = min(grant.remaining, cost - covered)
            if take <= 0:
                break
            grant.remaining -= take
            covered += take
            self.changed[grant.pk] = grant
        self.grants = [grant for grant in self.grants if grant.remaining > 0]
        return covered, cost - covered

    def debit(self, *, cost: Decimal, covered: Decimal, reference: str) -> None:
        self._append(EntryType.DEBIT, -cost, covered=covered, overage=cost - covered, reference=reference)

    def save(self) -> None:
        LedgerEntry.objects.bulk_create(self.entries)
        if self.changed:
            CreditGrant.objects.bulk_update(self.changed.values(), ["remaining", "expired_at"])
        self.balance.save(update_fields=["posted", "updated_at"])
        self.entries, self.changed = [], {}


def open_ledger(org_id: int, *, now=None) -> OrgLedger:
    """Lock the org's balance row and load its live grants, expiring those past due. In a transaction."""
    ledger = OrgLedger(
        balance=CreditBalance.objects.select_for_update().get(org_id=org_id), now=now or timezone.now()
    )
    for grant in CreditGrant.objects.filter(org_id=org_id, remaining__gt=0):
        if grant.expires_at is not None and grant.expires_at <= ledger.now:
            ledger.expire(grant)
        else:
            ledger.grants.append(grant)
    ledger.grants.sort(key=_expiry_order)
    return ledger


def debit_usage(
    *, costs_by_org: dict[int, list[tuple[int, Decimal]]], reference: str, now=None
) -> dict[int, Decimal]:
    """Debit each org once for its events' costs, drawn in the order given; returns {event key:
    overage} for the events credits did not fully cover. Call in the transaction storing the events.

    Orgs are locked in id order, so two batches touching the same orgs never deadlock.
    """
    overages: dict[int, Decimal] = {}
    for org_id in sorted(costs_by_org):
        ledger = open_ledger(org_id, now=now)
        total = covered_total = ZERO
        for key, cost in costs_by_org[org_id]:
            covered, overage = ledger.draw(cost)
            total += cost
            covered_total += covered
            if overage > 0:
                overages[key] = overage
        ledger.debit(cost=total, covered=covered_total, reference=reference)
        ledger.save()
    return overages


def expire_credit_grants(*, now=None) -> dict:
    """Take the remaining credits of every grant past its expiry out of the balance; idempotent."""
    now = now or timezone.now()
    due_orgs = (
        CreditGrant.objects.filter(remaining__gt=0, expires_at__lte=now)
        .order_by("org_id")
        .values_list("org_id", flat=True)
        .distinct()
    )
    grants, expired = 0, ZERO
    for org_id in list(due_orgs):
        with transaction.atomic():
            ledger = open_ledger(org_id, now=now)
            grants += len(ledger.entries)
            expired -= sum((entry.amount for entry in ledger.entries), ZERO)
            ledger.save()
    return {"expired_grants": grants, "expired_credits": str(expired)}


def check_ledger_consistency(*, now=None) -> dict:
    """Prove balance rows agree with the ledger (the job); records and logs every drifted org."""
    drifted = list(drifted_balances().select_related("org"))
    LedgerDrift.objects.bulk_create(
        LedgerDrift(
            org_id=balance.org_id,
            posted=balance.posted,
            ledger_sum=balance.ledger_sum,
            grants_remaining=balance.grants_remaining,
        )
        for balance in drifted
    )
    for balance in drifted:
        logger.error(
            "Ledger drift for %s: balance %s, ledger %s, live grants %s",
            balance.org.public_id,
            balance.posted,
            balance.ledger_sum,
            balance.grants_remaining,
        )
    return {
        "orgs_checked": CreditBalance.objects.count(),
        "drifted": len(drifted),
        "drifted_orgs": [balance.org.public_id for balance in drifted],
    }
