"""Retention end to end: a month past USAGE_EVENT_RETENTION_MONTHS is archived once final, and the
usage summary and the parity check for it answer as before."""

import csv
import gzip
import hashlib
from datetime import UTC, datetime
from io import TextIOWrapper

import pytest
from django.db import connection

from core.errors import InvalidRequest
from tests.concurrency import committing
from tests.usage.conftest import beyond
from usage.models import ArchivedOverage, MeterParity, UsageArchive, UsageArchiveStatus, UsageEvent
from usage.selectors import usage_summary
from usage.services.archive import archive_usage_partitions
from usage.services.events import record_usage_events
from usage.services.metering import report_meter_usage
from usage.services.parity import check_meter_parity
from usage.services.partitions import create_usage_partitions
from usage.services.rollup import rollup_usage

LATER = datetime(2028, 1, 5, 9, tzinfo=UTC)  # November 2026 ended 13 months before January 2028
DAY = {"start": datetime(2026, 11, 20, tzinfo=UTC), "end": datetime(2026, 11, 21, tzinfo=UTC)}


def table_exists(name):
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        return cursor.fetchone()[0]


def latest_parity(org):
    parity = MeterParity.objects.filter(org=org).order_by("-checked_at", "-id").first()
    return parity.events_total, parity.buckets_total, parity.drift


@committing
def test_a_final_month_is_exported_dropped_and_still_answers(live, settings, tmp_path):
    settings.USAGE_ARCHIVE_DIR = tmp_path
    create_usage_partitions()  # November 2026 gets its own partition
    org = live.new_org()
    live.use(org, beyond("3.5"), at="2026-11-20T13:10:00Z", key="first")
    live.use(org, "2", at="2026-11-20T14:20:00Z", key="second")
    rollup_usage()
    report_meter_usage()
    summary = usage_summary(org=org, product=live.red, **DAY)

    live.clock.move_to(LATER)
    check_meter_parity()
    parity = latest_parity(org)
    assert parity[2] is False
    result = archive_usage_partitions()

    archived = [a for a in result["archived"] if a["month"] == "2026-11"]
    assert archived and archived[0]["rows"] == 2
    path = tmp_path / "usage_usageevent_p2026_11.csv.gz"
    digest, name = (tmp_path / "usage_usageevent_p2026_11.csv.gz.sha256").read_text().split()
    assert (digest, name) == (hashlib.sha256(path.read_bytes()).hexdigest(), path.name)
    with gzip.open(path, "rb") as packed:
        exported = list(csv.DictReader(TextIOWrapper(packed, "utf-8")))
    assert sorted(row["event_id"] for row in exported) == ["first", "second"]
    assert not table_exists("usage_usageevent_p2026_11")
    assert not UsageEvent.objects.filter(org=org).exists()
    assert (
        UsageArchive.objects.get(month=datetime(2026, 11, 1, tzinfo=UTC)).status
        == UsageArchiveStatus.ARCHIVED
    )
    assert ArchivedOverage.objects.filter(org_id=org.pk).exists()

    # The month still answers: the summary from its buckets, parity with the archived overage.
    assert usage_summary(org=org, product=live.red, **DAY) == summary
    check_meter_parity()
    assert latest_parity(org) == parity
    # A partial hour needs the raw events: refused, with the reason.
    with pytest.raises(InvalidRequest) as refused:
        usage_summary(
            org=org, product=live.red, start=datetime(2026, 11, 20, 13, 30, tzinfo=UTC), end=DAY["end"]
        )
    assert refused.value.details["archived_months"] == ["2026-11"]
    # An archived event_id is still a duplicate; a second run archives nothing.
    again = {"event_id": "first", "org_id": org.public_id, "metric": "fix_run", "quantity": "1",
             "occurred_at": "2028-01-05T08:00:00Z"}  # fmt: skip
    assert record_usage_events(product=live.red, events=[again]) == {"accepted": 0, "duplicates": 1}
    assert archive_usage_partitions()["archived"] == []


@committing
def test_a_month_waits_while_it_is_not_final(live, settings, tmp_path):
    settings.USAGE_ARCHIVE_DIR = tmp_path
    create_usage_partitions()
    org = live.new_org()
    live.use(org, beyond("3.5"), at="2026-11-20T13:10:00Z")
    live.clock.move_to(LATER)

    result = archive_usage_partitions()  # not rolled up, never reported, no parity check

    assert "some events are not rolled up yet" in result["waiting"]["usage_usageevent_p2026_11"]
    assert table_exists("usage_usageevent_p2026_11")
    assert UsageEvent.objects.filter(org=org).count() == 1
    rollup_usage()
    assert any(
        "parity" in reason for reason in archive_usage_partitions()["waiting"]["usage_usageevent_p2026_11"]
    )
