"""The credit ledger: the one place that moves credits.

Every write locks the org's CreditBalance row first (the credit lock), appends ledger entries and
updates the balance row in the same transaction, so the two always agree. Debits draw from the
grants that expire soonest. Expired grants leave by an `expiry` entry as soon as anything takes the
lock, and the expire_credit_grants job takes them out for orgs with no activity.

Invariant (checked by check_ledger_consistency): posted == sum of the ledger, and the live grants'
remaining credits == max(posted, 0). A negative balance is credit used beyond every grant. Its
billable part (`billed_debt`: overage debited while the plan billed overage through Stripe's meter)
is settled before the next grant, whatever the plan is by then; the rest is paid by the next grant
first. So 0 <= billed_debt <= max(-posted, 0).
"""

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from billing.models import CreditBalance, CreditGrant, EntryType, LedgerDrift, LedgerEntry
from billing.periods import month_of
from billing.selectors import drifted_balances

logger = logging.getLogger(__name__)

ZERO = Decimal("0")


def _expiry_order(grant: CreditGrant) -> tuple[bool, datetime, int]:
    # Soonest expiry first, grants that never expire last, then the oldest.
    return (grant.expires_at is None, grant.expires_at or grant.created_at, grant.pk)


@dataclass
class OrgLedger:
    """One org's balance and live grants, locked for the rest of the transaction."""

    balance: CreditBalance
    now: datetime
    grants: list[CreditGrant] = field(default_factory=list)  # live, soonest-expiring first
    entries: list[LedgerEntry] = field(default_factory=list)
    changed: dict[int, CreditGrant] = field(default_factory=dict)

    @property
    def posted(self) -> Decimal:
        return self.balance.posted

    def _append(self, entry_type: EntryType, amount: Decimal, **fields: Any) -> None:
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
        """Zero the billed part of a negative balance: overage billed through Stripe is not also owed
        in credits. Debt that was never billed (a plan without overage) stays, for the next grant."""
        amount = min(self.balance.billed_debt, max(-self.posted, ZERO))
        self.balance.billed_debt = ZERO
        if amount > 0:
            self._append(EntryType.SETTLEMENT, amount, reference=reference)
        return amount

    def add_grant(self, **fields: Any) -> CreditGrant:
        """Create and post a grant. A negative balance (credits owed) is paid from it first."""
        amount = fields["amount"]
        grant = CreditGrant.objects.create(**fields, remaining=max(amount - max(-self.posted, ZERO), ZERO))
        self._append(EntryType.GRANT, amount, grant=grant, reference=f"grant:{grant.public_id}")
        if grant.remaining > 0:
            self.grants.append(grant)
            self.grants.sort(key=_expiry_order)
        return grant

    def take_back(self, grant_id: int, amount: Decimal, *, reference: str) -> Decimal:
        """Take up to `amount` of what the grant has left (nothing once spent or expired) out of the
        balance with an `adjustment` entry; returns what was taken."""
        grant = next((live for live in self.grants if live.pk == grant_id), None)
        taken = min(amount, grant.remaining) if grant is not None else ZERO
        if grant is None or taken <= 0:
            return ZERO
        grant.remaining -= taken
        self.changed[grant.pk] = grant
        self.grants = [live for live in self.grants if live.remaining > 0]
        self._append(EntryType.ADJUSTMENT, -taken, grant=grant, reference=reference)
        return taken

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

    def debit(self, *, cost: Decimal, covered: Decimal, billable: Decimal, reference: str) -> None:
        """Post a debit of what draw() took; `billable` is the part of its overage Stripe bills (it
        counts toward this month's overage, which the spend cap reads)."""
        self.balance.billed_debt += billable
        if billable > 0:
            month = month_of(self.now)
            if self.balance.overage_month != month:
                self.balance.overage_month, self.balance.month_overage = month, ZERO
            self.balance.month_overage += billable
        self._append(EntryType.DEBIT, -cost, covered=covered, overage=cost - covered, reference=reference)

    def save(self) -> None:
        save_ledgers([self])


def grant_snapshot(grant: CreditGrant) -> dict[str, Any]:
    """A grant as audit entries record it."""
    return {
        "id": grant.public_id,
        "grant_type": grant.grant_type,
        "amount": str(grant.amount),
        "expires_at": grant.expires_at.isoformat() if grant.expires_at else None,
    }


def open_ledgers(org_ids: Collection[int], *, now: datetime | None = None) -> dict[int, OrgLedger]:
    """Lock the orgs' balance rows and load their live grants, expiring those past due; in two
    queries whatever the number of orgs. Call inside a transaction.

    The rows are locked in org id order, so two writers touching the same orgs never deadlock.
    """
    now = now or timezone.now()
    balances = CreditBalance.objects.select_for_update().filter(org_id__in=org_ids).order_by("org_id")
    ledgers = {balance.org_id: OrgLedger(balance=balance, now=now) for balance in balances}
    for grant in CreditGrant.objects.filter(org_id__in=org_ids, remaining__gt=0):
        ledger = ledgers[grant.org_id]
        if grant.expires_at is not None and grant.expires_at <= now:
            ledger.expire(grant)
        else:
            ledger.grants.append(grant)
    for ledger in ledgers.values():
        ledger.grants.sort(key=_expiry_order)
    return ledgers


def open_ledger(org_id: int, *, now: datetime | None = None) -> OrgLedger:
    """One org's ledger, locked: see open_ledgers."""
    return open_ledgers([org_id], now=now)[org_id]


def save_ledgers(ledgers: Iterable[OrgLedger]) -> None:
    """Write what the ledgers appended and changed: three statements for any number of orgs."""
    ledgers = list(ledgers)
    now = timezone.now()
    LedgerEntry.objects.bulk_create([entry for ledger in ledgers for entry in ledger.entries])
    grants = [grant for ledger in ledgers for grant in ledger.changed.values()]
    balances = [ledger.balance for ledger in ledgers]
    for balance in balances:
        balance.updated_at = now
    if connection.vendor == "postgresql":
        # Django's bulk_update builds a CASE per row in Python; unnest sends three arrays.
        with connection.cursor() as cursor:
            if grants:
                cursor.execute(
                    "UPDATE billing_creditgrant AS g SET remaining = v.remaining, expired_at = v.expired_at"
                    " FROM unnest(%s::bigint[], %s::numeric[], %s::timestamptz[])"
                    " AS v(id, remaining, expired_at) WHERE g.id = v.id",
                    [[g.pk for g in grants], [g.remaining for g in grants], [g.expired_at for g in grants]],
                )
            cursor.execute(
                "UPDATE billing_creditbalance AS b SET posted = v.posted, billed_debt = v.billed_debt,"
                " month_overage = v.month_overage, overage_month = v.overage_month, updated_at = %s"
                " FROM unnest(%s::bigint[], %s::numeric[], %s::numeric[], %s::numeric[], %s::date[])"
                " AS v(id, posted, billed_debt, month_overage, overage_month) WHERE b.id = v.id",
                [
                    now,
                    [b.pk for b in balances],
                    [b.posted for b in balances],
                    [b.billed_debt for b in balances],
                    [b.month_overage for b in balances],
                    [b.overage_month for b in balances],
                ],
            )
    else:
        if grants:
            CreditGrant.objects.bulk_update(grants, ["remaining", "expired_at"])
        CreditBalance.objects.bulk_update(
            balances, ["posted", "billed_debt", "month_overage", "overage_month", "updated_at"]
        )
    for ledger in ledgers:
        ledger.entries, ledger.changed = [], {}


def expire_credit_grants(*, now: datetime | None = None) -> dict[str, Any]:
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


def check_ledger_consistency(*, now: datetime | None = None) -> dict[str, Any]:
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
