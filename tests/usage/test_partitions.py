"""Usage events in monthly partitions: the migration that made them, the job that makes them ahead,
and the duplicate check that no longer lives in the events' table."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from billing.models import MetricPrice
from orgs.models import Product
from tests.concurrency import committing
from usage.models import UsageEvent, UsageEventKey
from usage.services.events import record_usage_events
from usage.services.partitions import create_usage_partitions

FAR = datetime(2031, 6, 10, 12, tzinfo=UTC)  # a month no migration made a partition for


def rows(sql, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def partition_of(event_id):
    return rows("SELECT tableoid::regclass::text FROM usage_usageevent WHERE event_id = %s", [event_id])[0][0]


def events(org, *names, at="2031-06-10T11:00:00Z"):
    return [
        {"event_id": name, "org_id": org.public_id, "metric": "fix_run", "quantity": "1", "occurred_at": at}
        for name in names
    ]


@pytest.fixture
def red(catalog):
    return Product.objects.get(slug="red")


@committing
def test_the_migration_moves_every_row_once_and_fills_the_keys(org, red):
    price = MetricPrice.objects.filter(metric__product=red).first()
    executor = MigrationExecutor(connection)
    executor.migrate([("usage", "0006_meter_report_attempts")])
    for name, at in [
        ("old", "2024-01-15T10:00:00Z"),
        ("a", "2026-11-18T09:00:00Z"),
        ("b", "2026-10-02T00:00:00Z"),
    ]:
        rows(
            "INSERT INTO usage_usageevent (product_id, event_id, org_id, user_id, metric, price_id, "
            "quantity, cost, overage, billable_overage, occurred_at, received_at, properties) "
            "VALUES (%s, %s, %s, '', 'fix_run', %s, 1, 2.5, 0, 0.5, %s, now(), '{}') RETURNING id",
            [red.pk, name, org.pk, price.pk, at],
        )
    columns = "id, event_id, occurred_at, cost, billable_overage, ingest_txid"
    before = rows(f"SELECT {columns} FROM usage_usageevent ORDER BY id")  # noqa: S608

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert rows(f"SELECT {columns} FROM usage_usageevent ORDER BY id") == before  # noqa: S608
    assert set(UsageEventKey.objects.values_list("product_id", "event_id")) == {
        (red.pk, "old"),
        (red.pk, "a"),
        (red.pk, "b"),
    }
    assert rows("SELECT relkind FROM pg_class WHERE relname = 'usage_usageevent'") == [("p",)]
    assert partition_of("old") == "usage_usageevent_p2024_01"
    # New events get new ids, and the old ones are still duplicates.
    result = record_usage_events(
        product=red,
        events=events(org, "a", "c", at="2026-11-18T09:30:00Z"),
        now=datetime(2026, 11, 18, 10, tzinfo=UTC),
    )
    assert result == {"accepted": 1, "duplicates": 1}
    assert UsageEvent.objects.get(event_id="c").pk > max(row[0] for row in before)


@pytest.mark.time_machine(FAR, tick=False)
def test_the_job_makes_months_ahead_and_moves_strays_out_of_the_default(org, red):
    # The test database's migration may have run at this clock (the first test's): start without
    # these months (dropped in this test's transaction only).
    rows(f"DROP TABLE IF EXISTS {', '.join(f'usage_usageevent_p2031_{m:02}' for m in range(6, 10))}")
    record_usage_events(product=red, events=events(org, "x", "y"))
    assert partition_of("x") == "usage_usageevent_default"
    ids = rows("SELECT id, ingest_txid FROM usage_usageevent ORDER BY id")

    summary = create_usage_partitions(months_ahead=2)

    assert summary["created"] == [
        "usage_usageevent_p2031_06",
        "usage_usageevent_p2031_07",
        "usage_usageevent_p2031_08",
    ]
    assert summary["moved_from_default"] == 2
    assert partition_of("x") == "usage_usageevent_p2031_06"
    assert (
        rows("SELECT id, ingest_txid FROM usage_usageevent ORDER BY id") == ids
    )  # the rollup's view unchanged
    # Idempotent: a second run makes nothing; a stored event_id is still a duplicate.
    assert create_usage_partitions(months_ahead=2)["created"] == []
    assert record_usage_events(product=red, events=events(org, "x", "z")) == {"accepted": 1, "duplicates": 1}
    assert partition_of("z") == "usage_usageevent_p2031_06"


@pytest.mark.time_machine(FAR, tick=False)
def test_a_key_without_its_event_is_still_a_duplicate(org, red):
    """Once a month is archived only the key remains: the event_id never counts again."""
    record_usage_events(product=red, events=events(org, "gone"))
    UsageEvent.objects.filter(event_id="gone").delete()

    result = record_usage_events(product=red, events=events(org, "gone", at="2031-06-10T11:30:00Z"))

    assert result == {"accepted": 0, "duplicates": 1}
    assert not UsageEvent.objects.filter(event_id="gone").exists()


def test_runjob_registers_both_jobs():
    from billingsite.jobs import JOBS

    assert JOBS["create_usage_partitions"].task == "usage.tasks.create_usage_partitions"
    assert JOBS["archive_usage_partitions"].task == "usage.tasks.archive_usage_partitions"
