"""The money invariants, after every step of random sequences of credit operations (hypothesis).

Operations: product grants (with replayed and conflicting idempotency keys), usage batches (with
duplicate event ids), holds reserved, released and committed, grant expiry, plan changes as Stripe
decides them, invoices failing and being paid, allowance runs, and the clock moving across month
ends. After every step, for every org: the balance row is the sum of its ledger; live grants hold
max(balance, 0); stored event costs are the debits; billed debt is a part of the debt, and the
billable overage ever debited is the billed debt plus what was settled; a month never holds more
allowance than its richest plan gives.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from itertools import count

import pytest
import time_machine
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from billing.exceptions import EntitlementDenied, GrantLimitExceeded, HoldNotActive, IdempotencyConflict
from billing.models import (
    AllowanceClaim,
    BillingAccount,
    ClaimStatus,
    CreditBalance,
    CreditGrant,
    EntryType,
    GrantType,
    InvoiceKind,
    LedgerEntry,
    PaymentFailure,
    Plan,
)
from billing.periods import month_end, month_of
from billing.selectors import balances
from billing.services import allowances, ledger
from billing.services.grants import grant_credits
from billing.services.holds import release_hold, reserve_credits
from billing.services.payments import apply_plan, derive_payment_state, lock_account
from orgs.services.audit import Actor
from tests.conftest import OWNER, TEST_CATALOG
from tests.factories import OrganizationFactory
from usage.models import UsageEvent
from usage.services.events import record_usage_events
from usage.services.holds import commit_hold

START = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
ACTOR = Actor.system("properties")
KEYS = ["k1", "k2", "k3"]  # few keys: replays and conflicts happen often
RICHEST_PLAN = max(D(plan["monthly_credits"]) for plan in TEST_CATALOG["plans"].values())

amounts = st.decimals(min_value=D("0.000001"), max_value=D(3000), places=6)
quantities = st.decimals(min_value=D(0), max_value=D(900), places=6)


class CreditMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        # Each example starts from the same database: its work is rolled back in teardown.
        self.atomic = transaction.atomic()
        self.atomic.__enter__()
        self.traveller = time_machine.travel(START, tick=False)
        self.clock = self.traveller.start()
        self.events = count()
        self.holds: list[str] = []

    def teardown(self):
        self.traveller.stop()
        transaction.set_rollback(True)
        self.atomic.__exit__(None, None, None)

    @initialize()
    def open_orgs(self):
        from orgs.models import Product

        self.product = Product.objects.get(slug="red")
        self.orgs = [OrganizationFactory(owner_user_id=OWNER) for _ in range(2)]

    # --- operations -------------------------------------------------------------------------------

    @rule(
        org=st.integers(0, 1),
        amount=amounts,
        key=st.sampled_from(KEYS),
        kind=st.sampled_from(["bonus", "adjustment"]),
    )
    def grant(self, org, amount, key, kind):
        entries = LedgerEntry.objects.count()
        try:
            _, created = grant_credits(
                org=self.orgs[org],
                amount=amount,
                grant_type=GrantType(kind),
                reason="property",
                actor=Actor.for_product(self.product),
                idempotency_key=key,
            )
        except (IdempotencyConflict, GrantLimitExceeded):
            created = False
        if not created:  # a replay, a conflict or a refusal writes nothing
            assert LedgerEntry.objects.count() == entries

    @rule(org=st.integers(0, 1), runs=st.lists(quantities, min_size=1, max_size=4), replay=st.booleans())
    def use(self, org, runs, replay):
        first = next(self.events)
        keys = [f"e{first}-{n}" for n in range(len(runs))]
        if replay and first > 0:
            keys[0] = f"e{first - 1}-0"  # a duplicate: counted, never debited again
        now = timezone.now().isoformat()
        events = [
            {
                "event_id": key,
                "org_id": self.orgs[org].public_id,
                "metric": "fix_run",
                "quantity": str(q),
                "occurred_at": now,
            }
            for key, q in zip(keys, runs, strict=True)
        ]
        record_usage_events(product=self.product, events=events)

    @rule(
        org=st.integers(0, 1),
        quantity=st.decimals(min_value=D("0.1"), max_value=D(500), places=1),
        key=st.sampled_from(KEYS),
    )
    def reserve(self, org, quantity, key):
        target = self.orgs[org]
        try:
            hold, _, _ = reserve_credits(
                org_id=target.public_id,
                product=self.product,
                user_id=OWNER,
                metric="fix_run",
                quantity=quantity,
                idempotency_key=f"{key}-{org}",
                ttl_seconds=900,
            )
        except (EntitlementDenied, IdempotencyConflict):
            return
        self.holds.append(hold.public_id)
        if not BillingAccount.objects.get(org=target).plan.overage_allowed:
            assert balances(target)[0] >= 0  # a reserve never overdraws a plan without overage

    @precondition(lambda self: self.holds)
    @rule(index=st.integers(0, 20), release=st.booleans(), quantity=quantities)
    def end_hold(self, index, release, quantity):
        hold_id = self.holds[index % len(self.holds)]
        try:
            if release:
                release_hold(product=self.product, hold_id=hold_id)
            else:
                commit_hold(
                    product=self.product, hold_id=hold_id, event_id=f"commit-{hold_id}", quantity=quantity
                )
        except HoldNotActive:
            pass

    @rule(hours=st.integers(1, 24 * 12))
    def time_passes(self, hours):
        self.clock.shift(timedelta(hours=hours))

    @rule()
    def expiry_job(self):
        ledger.expire_credit_grants()

    @rule()
    def allowance_job(self):
        allowances.grant_monthly_allowances()

    @rule(org=st.integers(0, 1), plan=st.sampled_from(["free", "pro", "team"]))
    def stripe_changes_the_plan(self, org, plan):
        with transaction.atomic():
            account = lock_account(self.orgs[org])
            target = Plan.objects.get(name=plan)
            if account.plan_id != target.pk:
                apply_plan(account=account, plan=target, actor=ACTOR)

    @rule(org=st.integers(0, 1), paid=st.booleans())
    def a_plan_invoice_fails_or_is_paid(self, org, paid):
        target = self.orgs[org]
        with transaction.atomic():
            account = lock_account(target)
            if paid:
                PaymentFailure.objects.filter(org=target, resolved_at__isnull=True).update(
                    resolved_at=timezone.now(), resolution="paid"
                )
            else:
                PaymentFailure.objects.create(
                    invoice_id=f"in_{next(self.events)}",
                    org=target,
                    kind=InvoiceKind.PLAN,
                    first_failed_at=timezone.now(),
                )
            derive_payment_state(account, actor=ACTOR)

    # --- invariants -------------------------------------------------------------------------------

    @invariant()
    def the_books_balance(self):
        if not hasattr(self, "orgs"):
            return
        for org in self.orgs:
            balance = CreditBalance.objects.get(org=org)
            entries = LedgerEntry.objects.filter(org=org)
            assert balance.posted == (entries.aggregate(total=Sum("amount"))["total"] or 0)
            live = CreditGrant.objects.filter(org=org, remaining__gt=0).aggregate(total=Sum("remaining"))[
                "total"
            ]
            assert (live or 0) == max(balance.posted, 0)
            events = UsageEvent.objects.filter(org=org).aggregate(
                cost=Sum("cost"), billable=Sum("billable_overage")
            )
            debits = entries.filter(entry_type=EntryType.DEBIT).aggregate(total=Sum("amount"))["total"] or 0
            assert (events["cost"] or 0) == -debits
            assert 0 <= balance.billed_debt <= max(-balance.posted, 0)
            settled = (
                entries.filter(entry_type=EntryType.SETTLEMENT).aggregate(total=Sum("amount"))["total"] or 0
            )
            assert (events["billable"] or 0) == balance.billed_debt + settled

    @invariant()
    def one_allowance_per_month(self):
        if not hasattr(self, "orgs"):
            return
        month = month_of(timezone.now())
        for org in self.orgs:
            granted = (
                CreditGrant.objects.filter(
                    org=org, grant_type=GrantType.ALLOWANCE, expires_at=month_end(month)
                ).aggregate(total=Sum("amount"))["total"]
                or 0
            )
            claims = AllowanceClaim.objects.filter(org=org, month=month, status=ClaimStatus.GRANTED)
            assert granted == (claims.aggregate(total=Sum("credits"))["total"] or 0) <= RICHEST_PLAN


@pytest.mark.django_db
@pytest.mark.time_machine(START, tick=False)  # each sequence moves the clock itself, across month ends
def test_the_money_invariants_hold_after_every_step(catalog):
    # The profile (tests/conftest.py, HYPOTHESIS_PROFILE) sets how many sequences and steps.
    CreditMachine.TestCase.settings = settings(
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
    )
    CreditMachine.TestCase().runTest()
