"""PostgreSQL transaction ids: which transactions of this database could still insert events.

Shared by the rollup (its horizon) and the lag measurement (who holds the horizon back).
"""

from datetime import timedelta

from django.db.backends.utils import CursorWrapper

SNAPSHOT_XMAX = "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint"

# The transactions of this database holding an id (only they can insert events); prepared ones
# too. backend_xid and datid are shown to every role (state and the rest only to the backend's own
# role or pg_read_all_stats: they are for the lag display, never the horizon).
_WRITERS = """
SELECT backend_xid::text::bigint, pid, state, clock_timestamp() - xact_start, application_name
FROM pg_stat_activity
WHERE datid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()
UNION ALL
SELECT transaction::text::bigint, NULL, 'prepared', clock_timestamp() - prepared, gid
FROM pg_prepared_xacts WHERE database = current_database()
"""


def widen_xid(xid: int, near: int) -> int:
    """A 32-bit transaction id as the 64-bit (epoch-qualified) id nearest to `near`, a 64-bit one."""
    full = (near & ~0xFFFFFFFF) | xid
    if full > near + 2**31:
        full -= 2**32
    elif full < near - 2**31:
        full += 2**32
    return full


# A writer: (64-bit xid, pid (None when prepared), state, age, application name or gid).
Writer = tuple[int, int | None, str | None, timedelta | None, str | None]


def snapshot_xmax(cursor: CursorWrapper) -> int:
    """Ids from this one up are given to transactions that start from now on."""
    cursor.execute(SNAPSHOT_XMAX)
    row = cursor.fetchone()
    assert row is not None  # a SELECT without FROM answers one row
    return row[0]


def writers(cursor: CursorWrapper, *, near: int) -> list[Writer]:
    """This database's transactions holding an id, oldest first: (64-bit xid, pid, state, age, app)."""
    # pg_stat_activity is read once per transaction and then cached: drop any copy read earlier,
    # so that every writer that was running when `near` was read and still is, is seen.
    cursor.execute("SELECT pg_stat_clear_snapshot()")
    cursor.execute(_WRITERS)
    return sorted((widen_xid(row[0], near), *row[1:]) for row in cursor.fetchall())
