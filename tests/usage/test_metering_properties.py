"""The billing invariants of usage, rollup and meter reporting, after every step of random sequences
(hypothesis), against the Stripe stand-in with injected outages, rate limits and lost answers.

After every step, for every org: what Stripe counts is what was accepted (each identifier once, with
one value) plus answers lost on the way; no report claims more than the billable overage. Once the
reporter has caught up: the billable overage ever debited = what Stripe counts + the fraction carried
(under one credit) + the overage before bill-from, which is never billed.
"""

import uuid
from datetime import timedelta
from decimal import Decimal as D
from itertools import count

import pytest
import time_machine
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from billing.services.checkout import ensure_customer
from billing.services.payments import customer_id_for
from tests.conftest import FREE_CREDITS, set_plan
from tests.factories import OrganizationFactory
from tests.usage.conftest import BILL_FROM, NOW
from usage.models import MeterReport, MeterReportStatus, UsageBucket, UsageEvent
from usage.services.events import record_usage_events
from usage.services.metering import report_meter_usage
from usage.services.rollup import rollup_usage

# One fault per attempt: the test turns the stripe library's own retries (and their sleeps) off.
FAULTS = {
    "outage": {"status": 503},
    "rate_limit": {"status": 429},
    "lost_answer": {"status": 500, "after": True},  # Stripe counted it; we never heard
}


class MeteringMachine(RuleBasedStateMachine):
    standin = None  # set by the test

    def __init__(self):
        super().__init__()
        self.traveller = time_machine.travel(NOW, tick=False)
        self.clock = self.traveller.start()
        self.keys = count()
        self.run = uuid.uuid4().hex[:8]  # examples share the committed database: their ids must not meet
        self.standin.clear_faults()  # nor the faults an earlier example left unmet

    def teardown(self):
        self.traveller.stop()

    @initialize()
    def open_orgs(self):
        from orgs.models import Product

        self.red = Product.objects.get(slug="red")
        self.orgs = []
        for _ in range(2):
            org = OrganizationFactory()
            set_plan(org, "pro")  # 1 000 credits this month, overage billable
            with transaction.atomic():
                ensure_customer(org)
            self.orgs.append(org)
            self.use_credits(
                org, [FREE_CREDITS], at=timezone.now() - timedelta(minutes=1)
            )  # all used: overage from now

    @rule(
        org=st.integers(0, 1),
        credits=st.lists(
            st.decimals(min_value=D("0.000003"), max_value=D(700), places=6), min_size=1, max_size=3
        ),
        before_bill_from=st.booleans(),
        replay=st.booleans(),
    )
    def use(self, org, credits, before_bill_from, replay):
        at = BILL_FROM - timedelta(minutes=30) if before_bill_from else timezone.now() - timedelta(minutes=1)
        if at < timezone.now() - timedelta(days=34):
            at = timezone.now() - timedelta(minutes=1)
        self.use_credits(self.orgs[org], credits, at=at, replay=replay)

    def use_credits(self, org, credits, *, at, replay=False):
        first = next(self.keys)
        events = [
            {
                "event_id": f"{self.run}-{first - 1}-0"
                if replay and n == 0 and first
                else f"{self.run}-{first}-{n}",
                "org_id": org.public_id,
                "metric": "token",  # 0.000003 credits a token: fractions everywhere
                "quantity": str((amount / D("0.000003")).quantize(D(1))),
                "occurred_at": at.isoformat(),
            }
            for n, amount in enumerate(credits)
        ]
        record_usage_events(product=self.red, events=events)

    @rule()
    def rollup(self):
        rollup_usage()

    @rule(fault=st.sampled_from([None, *FAULTS]))
    def report(self, fault):
        if fault:
            self.standin.fail_next("POST", "/v1/billing/meter_events", **FAULTS[fault])
        report_meter_usage()

    @rule(
        org=st.integers(0, 1), credits=st.integers(1, 90), hours=st.integers(20, 30), lost_first=st.booleans()
    )
    def stripe_is_down_for_a_day(self, org, credits, hours, lost_first):
        """Overage, optionally a send Stripe counts but whose answer is lost, then a day of outage:
        what is still unsent after 23 h is reconciled against the summaries, never blindly resent."""
        self.use_credits(self.orgs[org], [D(credits)], at=timezone.now() - timedelta(minutes=1))
        rollup_usage()
        if lost_first:
            self.standin.fail_next("POST", "/v1/billing/meter_events", **FAULTS["lost_answer"])
            report_meter_usage()
        self.standin.fail_next("POST", "/v1/billing/meter_events", status=503, times=10_000)
        for _ in range(hours // 4):
            self.clock.shift(timedelta(hours=4))
            report_meter_usage()
        self.standin.clear_faults()

    @rule(minutes=st.integers(1, 60 * 30))
    def time_passes(self, minutes):
        self.clock.shift(timedelta(minutes=minutes))

    # --- invariants -------------------------------------------------------------------------------

    def stripe_values(self, org) -> list[tuple[str, int]]:
        customer = customer_id_for(org)
        return [
            (event["identifier"], int(event["payload"]["value"]))
            for event in self.standin.meter_events
            if event["payload"]["stripe_customer_id"] == customer
        ]

    @invariant()
    def stripe_counts_what_was_sent(self):
        for org in getattr(self, "orgs", []):
            in_stripe = self.stripe_values(org)
            identifiers = [identifier for identifier, _ in in_stripe]
            assert len(identifiers) == len(set(identifiers))  # no identifier twice
            reports = {r.identifier: r for r in MeterReport.objects.filter(org=org)}
            for identifier, value in in_stripe:
                assert reports[identifier].value == value  # one value per identifier, ever
                assert reports[identifier].status in (MeterReportStatus.SENT, MeterReportStatus.PENDING)
            sent = [r for r in reports.values() if r.status == MeterReportStatus.SENT]
            assert {r.identifier for r in sent} <= set(identifiers)
            billable = UsageBucket.objects.filter(org=org, hour__gte=BILL_FROM).aggregate(
                t=Sum("billable_overage")
            )
            counted = sum(
                r.value
                for r in reports.values()
                if r.status in (MeterReportStatus.SENT, MeterReportStatus.PENDING)
            )
            assert counted <= (billable["t"] or 0)  # never more than was used

    def catch_up(self):
        """What the jobs do given time: roll up and report every two hours; a report still unsent a
        day later is reconciled against Stripe's summaries (and its credits reported anew if absent)."""
        self.standin.clear_faults()  # Stripe is healthy again
        for shift in [2, 2, 2, 2, 24, 2, 2, 2]:
            rollup_usage()
            report_meter_usage()
            self.clock.shift(timedelta(hours=shift))
        rollup_usage()
        report_meter_usage()
        pending = MeterReport.objects.filter(org__in=self.orgs, status=MeterReportStatus.PENDING)
        assert not pending.exists(), list(
            pending.values_list("identifier", "attempts", "last_error", "next_attempt_at")
        )

    def check_caught_up(self):
        self.catch_up()
        for org in self.orgs:
            events = UsageEvent.objects.filter(org=org)
            billable = events.aggregate(t=Sum("billable_overage"))["t"] or 0
            before = events.filter(occurred_at__lt=BILL_FROM).aggregate(t=Sum("billable_overage"))["t"] or 0
            in_stripe = sum(value for _, value in self.stripe_values(org))
            carried = billable - before - in_stripe
            reports = list(
                MeterReport.objects.filter(org=org).values_list("identifier", "value", "status", "last_error")
            )
            assert D(0) <= carried < 1, (billable, before, in_stripe, reports)


@pytest.mark.time_machine(NOW, tick=False)
def test_what_stripe_bills_is_exactly_the_billable_overage(live, monkeypatch):
    monkeypatch.setattr("stripe.max_network_retries", 0)
    MeteringMachine.standin = live.standin

    class Checked(MeteringMachine):
        def teardown(self):
            if hasattr(self, "orgs"):
                self.check_caught_up()
            super().teardown()

    Checked.TestCase.settings = settings(
        max_examples=15,
        stateful_step_count=15,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    Checked.TestCase().runTest()


pytestmark = pytest.mark.django_db(transaction=True)
