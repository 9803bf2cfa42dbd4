"""Usage as support reads it: the org page's calendar months, and the usage-event list (newest
first, date hierarchy, filters by org, product and metric, readable columns)."""

import re
from datetime import datetime
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from core.display import credits_text, money_text
from orgs.models import Product

# The page's words name days and dates ("4 days ago", "on 12 Nov"): pinned at the suite's instant.
from tests.conftest import DEFAULT_CLOCK
from usage.models import UsageEvent
from usage.selectors import monthly_usage
from usage.services.events import record_usage_events

pytestmark = [pytest.mark.django_db, pytest.mark.time_machine(DEFAULT_CLOCK, tick=False)]
EVENTS = reverse("admin:usage_usageevent_changelist")


def ingest(org, product, metric, quantity, at, name):
    with time_machine.travel(at, tick=False):
        record_usage_events(
            product=Product.objects.get(slug=product),
            events=[
                {
                    "event_id": name,
                    "org_id": org.public_id,
                    "metric": metric,
                    "quantity": quantity,
                    "occurred_at": datetime.fromisoformat(at).isoformat(),
                }
            ],
        )


@pytest.fixture
def usage(catalog, org):
    ingest(org, "red", "fix_run", "3", "2026-09-20T10:00:00+00:00", "september")  # two months ago
    ingest(org, "red", "fix_run", "2", "2026-10-30T23:59:59+00:00", "october-last-second")
    ingest(org, "red", "fix_run", "1.5", "2026-11-01T00:00:00+00:00", "november-first-instant")
    ingest(org, "blue", "build_minute", "83.84", "2026-11-17T08:00:00+00:00", "a-very-long-event-id-" * 3)
    return org


def test_the_org_page_shows_this_calendar_month_and_the_last_per_product_and_metric(support, usage):
    rows = monthly_usage(org=usage, now=datetime.fromisoformat("2026-11-18T10:00:00+00:00"))
    page = support.get(reverse("admin:orgs_organization_change", args=[usage.pk])).content.decode()

    assert [(r["month"].month, r["product__slug"], r["metric"], r["quantity"], r["cost"]) for r in rows] == [
        (11, "blue", "build_minute", Decimal("83.84"), Decimal("83.84")),
        (11, "red", "fix_run", Decimal("1.5"), Decimal("3.75")),
        (10, "red", "fix_run", Decimal("2"), Decimal("5")),
    ]
    assert "<td>November 2026</td><td>red</td><td>fix_run</td><td>1.5</td><td>3.75</td><td>0</td>" in page
    assert "<td>October 2026</td><td>red</td><td>fix_run</td><td>2</td><td>5</td>" in page
    assert "September" not in page
    assert f'{EVENTS}?org={usage.public_id}"' in page
    assert "Credits per day, this month and last" in page
    assert "No usage in these 49 days." in page  # the chart spans 1 October to today (buckets: rollup)


def test_the_event_list_is_newest_first_and_readable(support, usage):
    page = support.get(EVENTS)

    events = list(page.context["cl"].result_list)
    assert [e.event_id for e in events][:2] == ["a-very-long-event-id-" * 3, "november-first-instant"]
    html = page.content.decode()
    assert "83.84" in html and "83.840000" not in html
    assert 'title="a-very-long-event-id-a-very' in html and "a-very-long-event-id-…" in html
    assert "white-space: nowrap" in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"product__id__exact": "blue"}, {"a-very-long-event-id-" * 3}),
        ({"metric": "fix_run"}, {"september", "october-last-second", "november-first-instant"}),
        ({"occurred_at__year": "2026", "occurred_at__month": "10"}, {"october-last-second"}),
    ],
)
def test_the_event_list_filters(support, usage, other_org, query, expected):
    ingest(other_org, "red", "fix_run", "1", "2026-11-10T00:00:00+00:00", "someone-else")
    if "product__id__exact" in query:
        query = {"product__id__exact": Product.objects.get(slug="blue").pk}

    events = support.get(EVENTS, {**query, "org": usage.public_id}).context["cl"].result_list

    assert {e.event_id for e in events} == expected


def test_the_org_filter_names_the_org_and_nothing_else(support, usage, other_org):
    html = support.get(EVENTS, {"org": usage.public_id}).content.decode()

    assert usage.name in html and other_org.name not in html


def test_the_date_hierarchy_answers_from_probes_and_matches_djangos(usage):
    probed = reverse_admin_queryset()
    plain = UsageEvent.objects.all()

    for kind, narrowed in [
        ("year", {}),
        ("month", {"occurred_at__year": 2026}),
        ("day", {"occurred_at__month": 11}),
    ]:
        assert list(probed.filter(**narrowed).datetimes("occurred_at", kind)) == list(
            plain.filter(**narrowed).datetimes("occurred_at", kind)
        )


def test_the_event_list_reads_a_bounded_number_of_queries(support, usage):
    with CaptureQueriesContext(connection) as queries:
        assert (
            support.get(EVENTS, {"occurred_at__year": "2026", "occurred_at__month": "11"}).status_code == 200
        )

    assert len(queries) < 60  # the probes: at most one per day of the month, plus the page's own
    assert not [q["sql"] for q in queries if "DISTINCT" in q["sql"] and "usage_usageevent" in q["sql"]]


def reverse_admin_queryset():
    from django.contrib import admin

    from usage.models import UsageEvent as Model

    return admin.site._registry[Model].get_queryset(None)


@given(st.decimals(min_value=-(10**13), max_value=10**13, places=6, allow_nan=False))
def test_credits_read_back_as_the_six_place_value(value):
    text = credits_text(value)

    assert Decimal(text.replace(",", "")) == value
    assert not re.search(r"\.\d*0$", text) and len(text.partition(".")[2]) <= 6


def test_credits_and_money_are_written_one_way():
    assert [credits_text(v) for v in ("209.600000000000", "13.6000000000000", 1000, None)] == [
        "209.6",
        "13.6",
        "1,000",
        "—",
    ]
    assert [money_text(4900, "eur"), money_text(123456, "usd"), money_text(500, "jpy")] == [
        "€49.00",
        "$1,234.56",
        "500 JPY",
    ]


def test_an_outsider_cannot_read_the_event_list(client, usage):
    assert client.get(EVENTS).status_code == 302


def test_usage_events_are_found_by_event_id_or_org_id(support, org, other_org, catalog):
    red = Product.objects.get(slug="red")
    now = timezone.now()
    record_usage_events(
        product=red,
        events=[
            {
                "event_id": name,
                "org_id": owner.public_id,
                "metric": "fix_run",
                "quantity": "1",
                "occurred_at": now.isoformat(),
            }
            for name, owner in [("run-1", org), ("run-2", other_org)]
        ],
    )
    page = reverse("admin:usage_usageevent_changelist")

    by_event = support.get(page, {"q": "run-2"})
    by_org = support.get(page, {"q": org.public_id})

    assert [e.event_id for e in by_event.context["cl"].result_list] == ["run-2"]
    assert [e.event_id for e in by_org.context["cl"].result_list] == ["run-1"]
