"""Decision receipts: what the entitlement check and reserve denied, for the org's admin page."""

import atexit
import logging
import threading
import time
from datetime import datetime

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection
from django.utils import timezone

from billing.entitlements import Decision

logger = logging.getLogger(__name__)

# Each process counts its denials in memory and writes them in one statement: at once when it has
# written nothing for FLUSH_SECONDS (a trickle is written through), else once BATCH receipts wait or
# FLUSH_SECONDS have passed, at the next denial or at the end of the next request it serves
# (billing/apps.py). A busy process thus writes about once a second, whatever the denial rate; a
# process that stops after a burst writes its last second's receipts at exit (atexit). Receipts
# are what support reads about denials, never money: a killed process loses at most that second.
BATCH = 50
FLUSH_SECONDS = 1.0

_UPSERT = """
INSERT INTO billing_denialreceipt
    (org_id, product_id, reason, metric, minute, count, last_user_id, last_at)
VALUES {rows}
ON CONFLICT (org_id, product_id, reason, metric, minute) DO UPDATE
SET count = billing_denialreceipt.count + EXCLUDED.count,
    last_user_id = EXCLUDED.last_user_id,
    last_at = EXCLUDED.last_at
"""
# On PostgreSQL, outside a transaction, the same upsert commits without waiting for its WAL flush:
# set_config(…, true) holds for the statement's own (implicit) transaction, and its commit reads
# synchronous_commit before resetting it (a crash may lose the last ~0.6 s of receipts).
_ASYNC_COMMIT = "WITH async_commit AS (SELECT set_config('synchronous_commit', 'off', true)) "
_ROW = "(%s, %s, %s, %s, %s, %s, %s, %s)"
_ASYNC_ROW = "SELECT %s, %s, %s, %s, %s, %s, %s, %s FROM async_commit"

Key = tuple[int, int, str, str, datetime]  # org, product, reason, metric, minute


class _Pending:
    """This process's receipts not yet written: (count, last user, last instant) per key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[Key, tuple[int, str, datetime]] = {}
        self._written_at = 0.0

    def add(self, key: Key, user_id: str, at: datetime) -> None:
        with self._lock:
            count = self._counts.get(key, (0, "", at))[0]
            self._counts[key] = (count + 1, user_id, at)
        self.flush(due_only=True)

    def flush(self, *, due_only: bool = False) -> None:
        """Write what waits (if due: BATCH waiting, or FLUSH_SECONDS since the last write)."""
        with self._lock:
            waited = time.monotonic() - self._written_at  # negative: a clock moved back (tests)
            if not self._counts or (due_only and len(self._counts) < BATCH and 0 <= waited < FLUSH_SECONDS):
                return
            counts, self._counts = self._counts, {}
            self._written_at = time.monotonic()
        try:
            _write(counts)
        except DatabaseError as error:
            if not isinstance(error, OperationalError | InterfaceError):  # will fail the same way again
                logger.exception("Could not write %s decision receipts; dropped.", len(counts))
                return
            logger.exception("Could not write %s decision receipts; kept for the next write.", len(counts))
            with self._lock:
                for key, (count, user_id, at) in counts.items():
                    newer = self._counts.get(key)
                    self._counts[key] = (count + newer[0], *newer[1:]) if newer else (count, user_id, at)


def _write(counts: dict[Key, tuple[int, str, datetime]]) -> None:
    params: list[int | str | datetime] = []
    # In key order: two processes upserting the same rows lock them in the same order (no deadlock).
    for (org_id, product_id, reason, metric, minute), (count, user_id, at) in sorted(counts.items()):
        params += [org_id, product_id, reason, metric, minute, count, user_id, at]
    # Never inside a caller's transaction: the setting would then hold for that whole commit.
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        rows = " UNION ALL ".join([_ASYNC_ROW] * len(counts))
        statement = _ASYNC_COMMIT + _UPSERT.format(rows=rows).replace("VALUES ", "", 1)
    else:
        statement = _UPSERT.format(rows=", ".join([_ROW] * len(counts)))
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


pending = _Pending()
atexit.register(pending.flush)


def record_denial(
    *, decision: Decision, product_id: int, user_id: str, metric: str, now: datetime | None = None
) -> None:
    """Count one denial in its minute's receipt (the row is created on the minute's first denial),
    written with this process's other waiting receipts (see above). Not idempotent by design (each
    call is one more denial received). Allowed decisions and ENTITLEMENT_RECEIPTS=off write nothing.
    """
    if decision.allowed or not settings.ENTITLEMENT_RECEIPTS:
        return
    now = now or timezone.now()
    key = (decision.state.org_pk, product_id, decision.reason, metric, now.replace(second=0, microsecond=0))
    pending.add(key, user_id, now)


def flush_receipts(**kwargs: object) -> None:
    """Write the waiting receipts if they are due (connected to request_finished)."""
    pending.flush(due_only=True)
