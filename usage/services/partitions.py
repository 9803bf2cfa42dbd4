"""Monthly partitions of the usage events (PostgreSQL): made ahead of time, strays moved in.

`usage_usageevent` is partitioned by range on occurred_at, one partition per UTC month named
`usage_usageevent_pYYYY_MM`, plus `usage_usageevent_default` for any event whose month has none
(the job normally leaves it empty). Creating a month that the default already holds rows of moves
those rows into the new partition first, with their ids and ingest_txid (the rollup's accounting
is untouched), then attaches it.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from django.utils import timezone

PARENT = "usage_usageevent"
DEFAULT = "usage_usageevent_default"
PREFIX = "usage_usageevent_p"
# One maintainer of the partitions at a time (creation and archiving).
LOCK_KEY = "usage_usageevent_partitions"


@dataclass(frozen=True)
class Month:
    start: datetime  # the first instant of the UTC month

    @property
    def end(self) -> datetime:
        return add_months(self.start, 1)

    @property
    def table(self) -> str:
        return f"{PREFIX}{self.start:%Y_%m}"


def month_start(instant: datetime) -> datetime:
    instant = instant.astimezone(UTC)
    return datetime(instant.year, instant.month, 1, tzinfo=UTC)


def add_months(start: datetime, months: int) -> datetime:
    year, month = divmod(start.year * 12 + start.month - 1 + months, 12)
    return datetime(year, month + 1, 1, tzinfo=UTC)


def partitioned() -> bool:
    """True on PostgreSQL (the embedded default keeps one plain table)."""
    return connection.vendor == "postgresql"


def lock_partitions(cursor: CursorWrapper) -> None:
    """Serialize partition maintenance until the transaction ends."""
    cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [LOCK_KEY])


def existing_months(cursor: CursorWrapper) -> list[Month]:
    """The monthly partitions attached now, oldest first (by their names, which this module gives)."""
    cursor.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = %s::regclass AND c.relname LIKE %s",
        [PARENT, PREFIX + "%"],
    )
    names = sorted(row[0] for row in cursor.fetchall())
    return [Month(datetime.strptime(name[len(PREFIX) :], "%Y_%m").replace(tzinfo=UTC)) for name in names]


def _create_month(cursor: CursorWrapper, month: Month) -> int:
    """Create and attach the month's partition, moving its strays out of the default; rows moved."""
    bounds = [month.start, month.end]
    cursor.execute(f"CREATE TABLE {month.table} (LIKE {PARENT} INCLUDING DEFAULTS)")
    # Table names are this module's constants and a month's formatted date, never input.
    strays = f"DELETE FROM {DEFAULT} WHERE occurred_at >= %s AND occurred_at < %s RETURNING *"  # noqa: S608
    cursor.execute(f"WITH moved AS ({strays}) INSERT INTO {month.table} SELECT * FROM moved", bounds)  # noqa: S608
    moved: int = cursor.rowcount
    # DDL takes no parameters: the bounds are literals of our own instants. A CHECK matching them
    # lets ATTACH skip scanning the new table.
    low, high = (f"'{bound.isoformat()}'::timestamptz" for bound in bounds)
    cursor.execute(
        f"ALTER TABLE {month.table} ADD CONSTRAINT {month.table}_bounds "
        f"CHECK (occurred_at >= {low} AND occurred_at < {high})"
    )
    cursor.execute(f"ALTER TABLE {PARENT} ATTACH PARTITION {month.table} FOR VALUES FROM ({low}) TO ({high})")
    cursor.execute(f"ALTER TABLE {month.table} DROP CONSTRAINT {month.table}_bounds")
    return moved


def create_usage_partitions(
    *, now: datetime | None = None, months_ahead: int | None = None
) -> dict[str, object]:
    """Make sure the partitions of this month and the next `months_ahead` exist.

    Each month in its own transaction under the maintenance lock; idempotent (a second run finds
    them all and creates nothing). Months already archived are never made again.
    """
    if not partitioned():
        return {"partitioned": False}
    now = now or timezone.now()
    ahead = settings.USAGE_PARTITION_MONTHS_AHEAD if months_ahead is None else months_ahead
    wanted = [Month(add_months(month_start(now), offset)) for offset in range(ahead + 1)]
    created, moved = [], 0
    for month in wanted:
        with transaction.atomic(), connection.cursor() as cursor:
            lock_partitions(cursor)
            if month in existing_months(cursor):
                continue
            moved += _create_month(cursor, month)
            created.append(month.table)
    return {"partitioned": True, "created": created, "moved_from_default": moved}
