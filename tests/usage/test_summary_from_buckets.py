"""The usage summary reads whole hours from the buckets and the edges from the events: the same
answer as summing the events, whatever the events, the range and how far the rollup has gone."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orgs.models import Product
from tests.concurrency import committing
from tests.factories import OrganizationFactory
from usage.models import UsageBucket
from usage.selectors import _summary_from_events, usage_summary
from usage.services.events import record_usage_events
from usage.services.rollup import rollup_usage

NOW = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
DAY_START = datetime(2026, 11, 18, tzinfo=UTC)
pytestmark = pytest.mark.time_machine(NOW, tick=False)

seconds = st.integers(min_value=0, max_value=(2 * 24 + 15) * 3600)  # 18 Nov to 20 Nov 15:00
an_event = st.tuples(seconds, st.sampled_from(["fix_run", "token"]), st.integers(min_value=1, max_value=50))


def record(org, product, events, prefix):
    record_usage_events(
        product=product,
        events=[
            {
                "event_id": f"{prefix}-{index}",
                "org_id": org.public_id,
                "metric": metric,
                "quantity": str(quantity),
                "occurred_at": (DAY_START + timedelta(seconds=at)).isoformat(),
            }
            for index, (at, metric, quantity) in enumerate(events)
        ],
        now=NOW,
    )


def as_plain(summary):
    return {
        "totals": [(r["metric"], r["quantity"], r["cost"]) for r in summary["totals"]],
        "daily": [(r["date"], r["metric"], r["quantity"], r["cost"]) for r in summary["daily"]],
    }


@committing
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rolled=st.lists(an_event, max_size=12),
    late=st.lists(an_event, max_size=6),
    ranges=st.lists(st.tuples(seconds, seconds), min_size=1, max_size=4),
    metric=st.sampled_from([None, "fix_run"]),
)
def test_buckets_and_edges_answer_as_the_events_do(catalog, rolled, late, ranges, metric):
    red = Product.objects.get(slug="red")
    org = OrganizationFactory()
    record(org, red, rolled, f"{org.pk}-rolled")  # event ids unique across examples
    rollup_usage()
    record(org, red, late, f"{org.pk}-late")  # not rolled up yet
    assert UsageBucket.objects.filter(org=org).count() == len({(at // 3600, m) for at, m, _ in rolled})
    for a, b in ranges:
        start, end = DAY_START + timedelta(seconds=min(a, b)), DAY_START + timedelta(seconds=max(a, b) + 1)
        for low, high in [(start, end), (start.replace(minute=0, second=0), end)]:
            args = {"org": org, "product": red, "start": low, "end": high, "metric": metric}
            assert as_plain(usage_summary(**args)) == as_plain(_summary_from_events(**args))
