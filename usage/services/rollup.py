"""Rolling usage events into hourly buckets: set-based, incremental, exact, safe to run concurrently.

Each event carries the id of the transaction that inserted it (`ingest_txid`, written by
PostgreSQL). A run takes the oldest transaction still running (`pg_snapshot_xmin`): every
transaction below it has committed or aborted, so the events of [previous horizon, horizon) are
final and none will ever appear there again. One statement adds their totals to the buckets, and
the horizon moves, in one transaction under the cursor's row lock. A late event (old occurred_at)
lands in the next run and adds to its hour's bucket; a long ingestion transaction only holds the
horizon back until it ends.
"""

from django.db import connection, transaction

from usage.models import RollupCursor

CURSOR = "usage_buckets"

_HORIZON = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"

# Sorted by the conflict key, so that concurrent writers of the same buckets never deadlock.
_ROLLUP = """
INSERT INTO usage_usagebucket AS b
       (org_id, product_id, metric, hour, quantity, cost, overage, billable_overage, events, updated_at)
SELECT org_id, product_id, metric, date_trunc('hour', occurred_at, 'UTC'),
       sum(quantity), sum(cost), sum(overage), sum(billable_overage), count(*), now()
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
    SELECT org_id, product_id, metric, strftime('%Y-%m-%d %H:00:00', occurred_at),
           sum(quantity), sum(cost), sum(overage), sum(billable_overage), count(*), datetime('now')
    FROM usage_usageevent GROUP BY 1, 2, 3, 4
    """,
]


def rollup_usage(*, now=None) -> dict:
    """Add the events of every transaction finished since the last run to their hourly buckets; one
    transaction, idempotent (a second run finds nothing new), serialized by the cursor's row lock."""
    with transaction.atomic():
        RollupCursor.objects.get_or_create(name=CURSOR)
        cursor_row = RollupCursor.objects.select_for_update().get(name=CURSOR)
        with connection.cursor() as cursor:
            if connection.vendor != "postgresql":
                for statement in _RECOMPUTE:
                    cursor.execute(statement)
                return {"recomputed": True}
            cursor.execute(_HORIZON)
            horizon = cursor.fetchone()[0]
            if horizon <= cursor_row.horizon:
                return {"horizon": cursor_row.horizon, "buckets": 0}
            cursor.execute(_ROLLUP, {"low": cursor_row.horizon, "high": horizon})
            buckets = cursor.rowcount
        cursor_row.horizon = horizon
        cursor_row.save(update_fields=["horizon", "updated_at"])
    return {"horizon": horizon, "buckets": buckets}


def rolled_up_horizon() -> int:
    """Events of transactions below this are in the buckets (0 before the first run)."""
    return RollupCursor.objects.filter(name=CURSOR).values_list("horizon", flat=True).first() or 0
