"""Retention: months of raw usage events past USAGE_EVENT_RETENTION_MONTHS are archived.

A month is archived only once it is final: every event of it rolled up (its transactions below the
rollup's horizon), no meter report pending for its orgs, and a parity check without drift since
the month ended for every org with billable overage in it. Then, in one transaction, its partition
is detached from the events and its billable overage per (org, product, hour) recorded (the
events side of later parity checks); then it is exported with COPY to
`USAGE_ARCHIVE_DIR/<partition>.csv.gz` (CSV with a header, UTC instants) beside
`<partition>.csv.gz.sha256` (the `sha256sum` format), and only then dropped. Buckets, meter
reports and the ledger are kept. A run interrupted after the detach is finished by the next one;
a second run finds nothing to do.
"""

import gzip
import hashlib
import os
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from usage.models import (
    ArchivedOverage,
    MeterParity,
    MeterReport,
    MeterReportStatus,
    UsageArchive,
    UsageArchiveStatus,
    UsageBucket,
)
from usage.services.partitions import (
    PARENT,
    Month,
    add_months,
    existing_months,
    lock_partitions,
    month_start,
    partitioned,
)
from usage.services.rollup import rolled_up_horizon

COLUMNS = (
    "id, product_id, event_id, org_id, user_id, metric, price_id, quantity, cost, overage, "
    "billable_overage, occurred_at, received_at, properties"
)


def archive_usage_partitions(*, now: datetime | None = None) -> dict[str, Any]:
    """Archive every final month past retention; returns what was archived and what waits, why."""
    if not partitioned():
        return {"partitioned": False}
    now = now or timezone.now()
    cutoff = add_months(month_start(now), -settings.USAGE_EVENT_RETENTION_MONTHS)
    archived, waiting = [], {}
    for archive in UsageArchive.objects.filter(status=UsageArchiveStatus.DETACHED).order_by("month"):
        archived.append(_export_and_drop(archive, now=now))
    with connection.cursor() as cursor:
        months = [month for month in existing_months(cursor) if month.end <= cutoff]
    for month in months:
        reasons = not_final(month)
        if reasons:
            waiting[month.table] = reasons
            continue
        detached = _detach(month, now=now)
        if detached is not None:
            archived.append(_export_and_drop(detached, now=now))
    return {"partitioned": True, "archived": archived, "waiting": waiting}


def not_final(month: Month) -> list[str]:
    """Why the month cannot be archived yet (nothing when it can)."""
    reasons = []
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT max(ingest_txid) FROM {month.table}")  # noqa: S608 (our table name)
        newest = cursor.fetchone()[0]
    if newest is not None and newest >= rolled_up_horizon():
        reasons.append("some events are not rolled up yet")
    org_ids = set(
        UsageBucket.objects.filter(hour__gte=month.start, hour__lt=month.end, billable_overage__gt=0)
        .values_list("org_id", flat=True)
        .distinct()
    )
    if MeterReport.objects.filter(org_id__in=org_ids, status=MeterReportStatus.PENDING).exists():
        reasons.append("meter reports are pending")
    latest: dict[int, MeterParity] = {}  # each org's latest check (the last one seen, oldest first)
    for parity in MeterParity.objects.filter(org_id__in=org_ids).order_by("org_id", "checked_at", "id"):
        latest[parity.org_id] = parity
    unchecked = [org for org in org_ids if org not in latest or latest[org].checked_at < month.end]
    if unchecked:
        reasons.append(f"no parity check since the month ended for {len(unchecked)} org(s)")
    if any(latest[org].drift for org in org_ids if org in latest):
        reasons.append("the latest parity check drifts")
    return reasons


def _detach(month: Month, *, now: datetime) -> UsageArchive | None:
    """Detach the month's partition and record its overage, in one transaction."""
    with transaction.atomic(), connection.cursor() as cursor:
        lock_partitions(cursor)
        if month not in existing_months(cursor):
            return None  # another run took it
        cursor.execute(f"ALTER TABLE {PARENT} DETACH PARTITION {month.table}")
        archive = UsageArchive.objects.create(
            month=month.start, table=month.table, status=UsageArchiveStatus.DETACHED, detached_at=now
        )
        hour = "date_trunc('hour', occurred_at, 'UTC')"
        overage = f"SELECT org_id, product_id, {hour}, sum(billable_overage) FROM {month.table}"  # noqa: S608
        cursor.execute(overage + " WHERE billable_overage <> 0 GROUP BY 1, 2, 3")
        ArchivedOverage.objects.bulk_create(
            ArchivedOverage(
                archive=archive, org_id=org_id, product_id=product_id, hour=hour, billable_overage=total
            )
            for org_id, product_id, hour, total in cursor.fetchall()
        )
    return archive


def _export_and_drop(archive: UsageArchive, *, now: datetime) -> dict[str, Any]:
    """Export the detached table to CSV.gz with its checksum, then drop it (one transaction)."""
    directory = settings.USAGE_ARCHIVE_DIR
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{archive.table}.csv.gz"
    partial = path.with_name(path.name + ".partial")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {archive.table} IN ACCESS EXCLUSIVE MODE")
        cursor.execute(f"SELECT count(*) FROM {archive.table}")  # noqa: S608 (our table name)
        rows = cursor.fetchone()[0]
        query = (
            f"COPY (SELECT {COLUMNS} FROM {archive.table} ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)"  # noqa: S608
        )
        with open(partial, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb") as packed:
            with cursor.cursor.copy(query) as copy:
                for block in copy:
                    packed.write(block)
            packed.close()
            raw.flush()
            os.fsync(raw.fileno())
        digest = _sha256(partial)
        os.replace(partial, path)
        path.with_name(path.name + ".sha256").write_text(f"{digest}  {path.name}\n")
        cursor.execute(f"DROP TABLE {archive.table}")
        archive.status, archive.path, archive.sha256 = UsageArchiveStatus.ARCHIVED, str(path), digest
        archive.rows, archive.archived_at = rows, now
        archive.save(update_fields=["status", "path", "sha256", "rows", "archived_at"])
    return {"month": f"{archive.month:%Y-%m}", "rows": rows, "path": str(path), "sha256": digest}


def _sha256(path: os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
