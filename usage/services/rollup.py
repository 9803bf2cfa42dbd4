"""Rolling usage events into hourly buckets: set-based, incremental, exact, safe to run concurrently.

Each event carries the id of the transaction that inserted it (`ingest_txid`, written by
PostgreSQL). A run takes a horizon below which every transaction that could insert events has
ended, so the events of [previous horizon, horizon) are final and none will ever appear there
again. One statement adds their totals to the buckets, and the horizon moves, in one transaction
under the cursor's row lock. A late event (old occurred_at) lands in the next run and adds to its
hour's bucket; a long writing transaction in this database holds the horizon back until it ends
(measured, shown and alarmed: usage/selectors.py:rollup_lag).
"""

import logging
from datetime import datetime
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.db.backends.utils import CursorWrapper
from django.utils import timezone

from usage.models import ROLLUP_CURSOR, RollupCursor
from usage.selectors import rollup_lag
from usage.txids import snapshot_xmax, writers

logger = logging.getLogger(__name__)

CURSOR = ROLLUP_CURSOR

# Sorted by the conflict key, so that concurrent writers of the same buckets never deadlock.
# updated_at is the application's clock (a parameter), the one meter reports are written with.
_ROLLUP = """
INSERT INTO usage_usagebucket AS b
       (org_id, product_id, metric, hour, quantity, cost, overage, billable_overage, events, updated_at)
SELECT org_id, product_id, metric, date_trunc('hour', occurred_at, 'UTC'),
       sum(quantity), sum(cost), sum(overage), sum(billable_overage), count(*), %(now)s
FROM usage_usageevent
WHERE ingest_txid >= %(low)s AND ingest_txid < %(high)s
GROUP BY 1, 2, 3, 4
ORDER BY 1, 2, 3, 4
ON CONFLICT (org_id, product_id, metric, hour) DO UPDATE SET
    quantity = b.quantity + EXCLUDED.quantity,
    cost = b.cost + EXCLUDED.cost,
    overage = b.overage + EXCLUDED.overage,
    billable_overage = b.billable_overage + EXCLUDED.billable_overage,
    events = b.events + EXCLUDED.events,
    updated_at = EXCLUDED.updated_at
"""

# The embedded default (SQLite) has no transaction ids: it recomputes every bucket, still one
# set-based statement, still idempotent.
_RECOMPUTE = [
    "DELETE FROM usage_usagebucket",
    """
    INSERT INTO usage_usagebucket
           (org_id, product_id, metric, hour, quantity, cost, overage, billable_overage, events, updated_at)
    SELECT org_id, product_id, metric, strftime('%%Y-%%m-%%d %%H:00:00', occurred_at),
           sum(quantity), sum(cost), sum(overage), sum(billable_overage), count(*), %s
    FROM usage_usageevent GROUP BY 1, 2, 3, 4
    """,
]


def horizon(cursor: CursorWrapper) -> int:
    """Every transaction below this id that could insert events has ended.

    Not pg_snapshot_xmin (the oldest transaction of the whole server, any database): a long
    transaction in another database stalled the rollup and the meter reports that wait for it.
    Transactions are only ever given ids at or above the snapshot's xmax, and any below it still
    running is one of the writers read after it; of those, only this database's can insert events.
    """
    xmax = snapshot_xmax(cursor)
    return min([xmax, *(row[0] for row in writers(cursor, near=xmax))])


def rollup_usage(*, now: datetime | None = None) -> dict[str, Any]:
    """Add the events of every transaction finished since the last run to their hourly buckets; one
    transaction, idempotent (a second run finds nothing new), serialized by the cursor's row lock."""
    summary = _roll_up()
    if connection.vendor == "postgresql":
        summary["lag_seconds"] = _alarm_on_lag()
    return summary


def _roll_up() -> dict[str, Any]:
    with transaction.atomic():
        RollupCursor.objects.get_or_create(name=CURSOR)
        cursor_row = RollupCursor.objects.select_for_update().get(name=CURSOR)
        with connection.cursor() as cursor:
            if connection.vendor != "postgresql":
                cursor.execute(_RECOMPUTE[0])
                cursor.execute(_RECOMPUTE[1], [timezone.now()])
                return {"recomputed": True}
            high = horizon(cursor)
            if high <= cursor_row.horizon:
                return {"horizon": cursor_row.horizon, "buckets": 0}
            cursor.execute(_ROLLUP, {"low": cursor_row.horizon, "high": high, "now": timezone.now()})
            buckets = cursor.rowcount
        cursor_row.horizon = high
        cursor_row.save(update_fields=["horizon", "updated_at"])
    return {"horizon": high, "buckets": buckets}


def _alarm_on_lag() -> int | None:
    try:
        lag = rollup_lag()
    except DatabaseError as error:
        logger.warning("Could not measure the usage rollup's lag: %s", error)
        return None
    if lag.lagging:
        logger.error("%s", lag.describe())
    return int(lag.lag.total_seconds())


def rolled_up_horizon() -> int:
    """Events of transactions below this are in the buckets (0 before the first run)."""
    return RollupCursor.objects.filter(name=CURSOR).values_list("horizon", flat=True).first() or 0
