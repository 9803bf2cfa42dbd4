"""Decision receipts: what the entitlement check and reserve denied, for the org's admin page."""

from datetime import datetime

from django.conf import settings
from django.db import connection
from django.utils import timezone

from billing.entitlements import Decision

# One statement, one round trip, on PostgreSQL and SQLite alike; only denials write, so the allowed
# path of the check (the hot one) is untouched. A burst of denials for one org adds to one row per
# (product, reason, metric) and minute.
_UPSERT = """
INSERT INTO billing_denialreceipt
    (org_id, product_id, reason, metric, minute, count, last_user_id, last_at)
VALUES (%s, %s, %s, %s, %s, 1, %s, %s)
ON CONFLICT (org_id, product_id, reason, metric, minute) DO UPDATE
SET count = billing_denialreceipt.count + 1,
    last_user_id = EXCLUDED.last_user_id,
    last_at = EXCLUDED.last_at
"""


# On PostgreSQL the same upsert commits without waiting for its WAL flush: set_config(…, true)
# holds for the statement's own (implicit) transaction, and its commit reads synchronous_commit
# before resetting it. A crash may lose the last receipts of ~0.6 s (wal_writer_delay × 3); the
# check does not wait for a disk flush per denial (bench/check.py --receipts).
_UPSERT_ASYNC_COMMIT = """
WITH async_commit AS (SELECT set_config('synchronous_commit', 'off', true))
INSERT INTO billing_denialreceipt
    (org_id, product_id, reason, metric, minute, count, last_user_id, last_at)
SELECT %s, %s, %s, %s, %s, 1, %s, %s FROM async_commit
ON CONFLICT (org_id, product_id, reason, metric, minute) DO UPDATE
SET count = billing_denialreceipt.count + 1,
    last_user_id = EXCLUDED.last_user_id,
    last_at = EXCLUDED.last_at
"""


def record_denial(
    *, decision: Decision, product_id: int, user_id: str, metric: str, now: datetime | None = None
) -> None:
    """Count one denial in its minute's receipt (the row is created on the minute's first denial).

    One autocommitted upsert, outside any transaction of the caller's decision; not idempotent by
    design (each call is one more denial received). Allowed decisions and ENTITLEMENT_RECEIPTS=off
    write nothing.
    """
    if decision.allowed or not settings.ENTITLEMENT_RECEIPTS:
        return
    now = now or timezone.now()
    minute = now.replace(second=0, microsecond=0)
    params: list[int | str | datetime] = [
        decision.state.org_pk,
        product_id,
        decision.reason,
        metric,
        minute,
        user_id,
        now,
    ]
    # Never inside a caller's transaction: the setting would then hold for that whole commit.
    alone = connection.vendor == "postgresql" and not connection.in_atomic_block
    statement = _UPSERT_ASYNC_COMMIT if alone else _UPSERT
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
