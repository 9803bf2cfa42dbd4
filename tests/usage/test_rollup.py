import json
import threading
from datetime import UTC, datetime
from decimal import Decimal as D
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.db import connections, transaction
from django.db.models import Sum

from tests.concurrency import committing, run_concurrently
from tests.conftest import FIX_RUN, FREE_CREDITS, TEST_CATALOG, set_plan
from tests.factories import OrganizationFactory
from usage.models import UsageBucket, UsageEvent
from usage.services.events import record_usage_events
from usage.services.rollup import rollup_usage
from usage.txids import widen_xid

NOW = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
pytestmark = pytest.mark.time_machine(NOW, tick=False)  # the events are ingested as of NOW


def ingest(org, product, *events):
    return record_usage_events(
        product=product,
        events=[
            {
                "org_id": org.public_id,
                "metric": "fix_run",
                "quantity": "1",
                "occurred_at": at,
                "event_id": name,
            }
            for name, at in events
        ],
        now=NOW,
    )


def buckets(org):
    return {
        (b.hour.isoformat(), b.metric): (b.quantity, b.cost, b.events)
        for b in UsageBucket.objects.filter(org=org).order_by("hour")
    }


def assert_buckets_match_events():
    totals = ("quantity", "cost", "overage", "billable_overage")
    events = UsageEvent.objects.aggregate(**{t: Sum(t) for t in totals})
    rolled = UsageBucket.objects.aggregate(**{t: Sum(t) for t in totals})
    assert rolled == events
    assert UsageBucket.objects.aggregate(n=Sum("events"))["n"] == UsageEvent.objects.count()


@pytest.fixture
def red(catalog):
    from orgs.models import Product

    return Product.objects.get(slug="red")


@committing
def test_it_rolls_events_into_utc_hourly_buckets(org, red):
    ingest(org, red, ("a", "2026-11-20T14:05:00Z"), ("b", "2026-11-20T14:59:59Z"))
    ingest(org, red, ("c", "2026-11-20T15:00:00Z"))

    summary = rollup_usage()

    assert summary["buckets"] == 2
    assert buckets(org) == {
        ("2026-11-20T14:00:00+00:00", "fix_run"): (D(2), D(5), 2),
        ("2026-11-20T15:00:00+00:00", "fix_run"): (D(1), D("2.5"), 1),
    }
    assert_buckets_match_events()


@committing
def test_a_second_run_changes_nothing(org, red):
    ingest(org, red, ("a", "2026-11-20T14:05:00Z"))
    rollup_usage()
    before = buckets(org)

    assert rollup_usage()["buckets"] == 0
    assert buckets(org) == before


@committing
def test_it_reads_only_what_is_new_and_late_events_join_their_hour(org, red):
    ingest(org, red, ("a", "2026-11-20T14:05:00Z"))
    rollup_usage()

    ingest(org, red, ("late", "2026-11-20T14:45:00Z"), ("b", "2026-11-20T15:10:00Z"))
    summary = rollup_usage()

    assert summary["buckets"] == 2
    assert buckets(org)[("2026-11-20T14:00:00+00:00", "fix_run")] == (D(2), D(5), 2)
    assert_buckets_match_events()


@committing
def test_overage_and_billable_overage_are_rolled_up(org, red):
    set_plan(org, "pro")
    runs = int(FREE_CREDITS / FIX_RUN) + 1  # one run more than the month's credits cover
    ingest(org, red, *[(f"e{i}", "2026-11-20T14:05:00Z") for i in range(runs)])

    rollup_usage()

    bucket = UsageBucket.objects.get(org=org)
    overage = runs * FIX_RUN - FREE_CREDITS
    assert (bucket.overage, bucket.billable_overage) == (overage, overage)


@committing
def test_runjob_runs_it(org, red):
    ingest(org, red, ("a", "2026-11-20T14:05:00Z"))
    out = StringIO()

    call_command("runjob", "rollup_usage", stdout=out)

    summary = json.loads(out.getvalue().splitlines()[-1])
    assert (summary["job"], summary["buckets"]) == ("rollup_usage", 1)


@committing
def test_an_uncommitted_batch_waits_for_the_next_run_and_is_counted_once():
    from billing.services.catalog import load_catalog
    from orgs.models import Product

    load_catalog(TEST_CATALOG)
    red = Product.objects.get(slug="red")
    org = OrganizationFactory()
    ingest(org, red, ("before", "2026-11-20T14:05:00Z"))
    inserted, release = threading.Event(), threading.Event()

    def slow_batch():
        try:
            with transaction.atomic():
                ingest(org, red, ("in-flight", "2026-11-20T14:10:00Z"))
                inserted.set()
                release.wait(timeout=30)
        finally:
            connections.close_all()

    thread = threading.Thread(target=slow_batch)
    thread.start()
    inserted.wait(timeout=30)
    rollup_usage()  # the in-flight transaction holds the horizon back
    assert UsageBucket.objects.get(org=org).events == 1

    release.set()
    thread.join()
    rollup_usage()
    rollup_usage()

    assert UsageBucket.objects.get(org=org).events == 2
    assert_buckets_match_events()


@committing
def test_concurrent_runs_and_ingestion_count_every_event_once():
    from billing.services.catalog import load_catalog
    from orgs.models import Product

    load_catalog(TEST_CATALOG)
    red = Product.objects.get(slug="red")
    orgs = [OrganizationFactory() for _ in range(3)]

    def work(index):
        if index % 2:
            return rollup_usage()
        for n in range(5):
            hour = f"2026-11-20T{10 + n:02d}:00:00Z"
            ingest(orgs[n % 3], red, *[(f"w{index}-{n}-{i}", hour) for i in range(20)])
        return None

    run_concurrently(work, 6)
    rollup_usage()

    assert UsageEvent.objects.count() == 300
    assert_buckets_match_events()


@committing
def test_buckets_are_stamped_with_the_applications_clock(org, red):
    with time_machine.travel(NOW, tick=False):
        ingest(org, red, ("a", "2026-11-20T14:05:00Z"))
        rollup_usage()

    assert UsageBucket.objects.get(org=org).updated_at == NOW  # not the database server's clock


def test_a_32_bit_transaction_id_is_read_in_the_epoch_nearest_the_snapshot():
    epoch = 2**32
    assert widen_xid(5, near=epoch + 10) == epoch + 5
    assert widen_xid(2**32 - 3, near=epoch + 10) == epoch - 3  # the previous epoch's last ids
    assert widen_xid(20, near=epoch - 3) == epoch + 20  # given out after the snapshot, past the wrap
    assert widen_xid(700, near=900) == 700
