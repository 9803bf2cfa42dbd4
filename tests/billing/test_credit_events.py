"""credits.low and credits.exhausted: told to products on the crossing, not on every debit."""

from decimal import Decimal as D

import pytest
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from billing.models import GrantType, Plan
from billing.services.credit_events import LOW_SHARE, emit_credit_crossings
from billing.services.grants import grant_credits
from billing.services.holds import reserve_credits
from orgs.models import EventType, OutgoingEvent
from orgs.services.audit import Actor
from orgs.services.event_endpoints import create_endpoint
from tests.conftest import FIX_RUN, FREE_CREDITS, MEMBER, PRO_CREDITS, set_plan
from usage.services.events import record_usage_events
from usage.services.holds import commit_hold

pytestmark = pytest.mark.django_db

CREDIT_EVENTS = [EventType.CREDITS_LOW, EventType.CREDITS_EXHAUSTED]
THRESHOLD = FREE_CREDITS * LOW_SHARE
SYSTEM = Actor.system("tests")


@pytest.fixture
def listening(product, receiver):
    return create_endpoint(
        product=product, url=receiver.url, event_types=CREDIT_EVENTS, actor=Actor.for_product(product)
    )


def use(product, org, credits: D, key: str) -> None:
    """Usage worth `credits` (fix_run at FIX_RUN credits each)."""
    quantity = credits / FIX_RUN
    event = {
        "event_id": key,
        "org_id": org.public_id,
        "metric": "fix_run",
        "quantity": str(quantity),
        "occurred_at": timezone.now().isoformat(),
    }
    assert record_usage_events(product=product, events=[event])["accepted"] == 1


def told(org) -> list[tuple[str, str]]:
    return [
        (e.event_type, e.data["balance"]) for e in OutgoingEvent.objects.filter(org=org).order_by("sequence")
    ]


def test_credits_low_is_told_once_on_the_crossing(org, product, catalog, listening):
    use(product, org, FREE_CREDITS - THRESHOLD, "down-to-the-line")  # exactly 10 % left: not below
    assert told(org) == []

    use(product, org, FIX_RUN, "below")
    use(product, org, FIX_RUN, "further")

    assert told(org) == [("credits.low", f"{THRESHOLD - FIX_RUN:.6f}")]
    event = OutgoingEvent.objects.get()
    assert event.data["threshold"] == f"{THRESHOLD:.6f}" and event.data["plan"] == "free"


def test_credits_exhausted_on_a_plan_without_overage(org, product, catalog, listening):
    use(product, org, FREE_CREDITS - FIX_RUN, "almost")
    use(product, org, FIX_RUN * 2, "past-zero")
    use(product, org, FIX_RUN, "more-debt")

    assert [t for t, _ in told(org)] == ["credits.low", "credits.exhausted"]


def test_one_debit_across_both_lines_tells_both(org, product, catalog, listening):
    use(product, org, FREE_CREDITS, "all-at-once")

    assert [t for t, _ in told(org)] == ["credits.low", "credits.exhausted"]


def test_a_plan_with_overage_is_never_exhausted(org, product, catalog, listening):
    set_plan(org, "pro")  # keeps the free month's credits, on a plan with overage
    grant_credits(
        org=org, amount=PRO_CREDITS - FREE_CREDITS, grant_type=GrantType.BONUS, reason="t", actor=SYSTEM
    )
    use(product, org, PRO_CREDITS * D("0.95"), "below-10-percent")
    use(product, org, PRO_CREDITS * D("0.1"), "into-overage")

    assert [t for t, _ in told(org)] == ["credits.low"]  # 10 % of pro's monthly credits crossed, then debt


def test_a_grant_rearms_the_line(org, product, catalog, listening):
    use(product, org, FREE_CREDITS - THRESHOLD + FIX_RUN, "below")
    grant_credits(org=org, amount=D(500), grant_type=GrantType.BONUS, reason="sorry", actor=SYSTEM)
    use(product, org, D(500), "below-again")

    assert [t for t, _ in told(org)] == ["credits.low", "credits.low"]


def test_a_reserve_that_crosses_tells_and_its_commit_does_not_tell_again(org, product, catalog, listening):
    hold, _, _ = reserve_credits(
        org_id=org.public_id,
        product=product,
        user_id=MEMBER,
        metric="fix_run",
        quantity=(FREE_CREDITS - THRESHOLD + FIX_RUN) / FIX_RUN,
        idempotency_key="big-job",
        ttl_seconds=900,
    )
    assert [t for t, _ in told(org)] == ["credits.low"]

    commit_hold(product=product, hold_id=hold.public_id, event_id="big-job-done")

    assert [t for t, _ in told(org)] == ["credits.low"]


def test_nobody_listening_writes_nothing(org, product, catalog):
    use(product, org, FREE_CREDITS, "all")

    assert not OutgoingEvent.objects.exists()


class TestCrossingsProperty(TestCase):
    """Over any walk of the available balance, each line is told exactly when a move crosses it."""

    @given(st.lists(st.integers(min_value=-300, max_value=1200), min_size=1, max_size=25))
    def test_each_crossing_is_told_once(self, walk):
        from orgs.models import Product
        from tests.factories import OrganizationFactory

        product = Product.objects.create(slug="prop", name="Prop")
        create_endpoint(
            product=product, url="http://127.0.0.1:9/x", event_types=CREDIT_EVENTS, actor=Actor.system("t")
        )
        org = OrganizationFactory()
        free = Plan.objects.get(name="free")
        expected = []
        balance = D(1000)
        for step in walk:
            after = D(step)
            if after < balance:
                if balance >= free.monthly_credits * LOW_SHARE > after:
                    expected.append("credits.low")
                if balance > 0 >= after:
                    expected.append("credits.exhausted")
            emit_credit_crossings(org_id=org.pk, plan=free, before=balance, after=after)
            balance = after
        emitted = list(
            OutgoingEvent.objects.filter(org=org).order_by("sequence").values_list("event_type", flat=True)
        )
        assert emitted == expected
