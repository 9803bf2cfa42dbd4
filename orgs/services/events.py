"""Events to products: `emit_event` is the one call that tells products about a change.

Call it inside the transaction that makes the change, after the change's own locks are taken:

    emit_event(org_id=account.org_id, event_type=EventType.ORG_SUSPENDED, data={...})

It writes the event with the org's next sequence number and one delivery per active endpoint
subscribed to its type (member.* only to products that have called about the org), and sends the
deliveries after the commit (orgs/services/event_delivery.py). A change that rolls back sends
nothing. When no endpoint wants the event, nothing is written at all.

The sequence is taken from the org's EventSequence row, whose lock is held until the commit: two
transactions emitting for one org are numbered in the order they commit, so a receiver may drop
anything older than what it has applied. Take that lock last (emit after every other lock of the
transaction, and for several orgs in org id order): then it can never be part of a deadlock.
"""

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from celery import current_app
from django.db import connection, transaction
from django.utils import timezone

from orgs.models import (
    MEMBER_EVENT_TYPES,
    EventDelivery,
    EventEndpoint,
    EventType,
    OutgoingEvent,
    ProductOrg,
)

DELIVER_TASK = "orgs.tasks.deliver_event"

# (product id, org id) pairs this process knows are recorded: noting one is then free.
_known_product_orgs: set[tuple[int, int]] = set()


def emit_event(
    *, org_id: int, event_type: EventType, data: dict[str, Any], now: datetime | None = None
) -> OutgoingEvent | None:
    """Write an event and its deliveries in the caller's transaction; sent after the commit. Returns
    the event, or None when no active endpoint is subscribed to it (nothing is written)."""
    if not connection.in_atomic_block:
        raise RuntimeError("emit_event belongs inside the transaction of the change it reports.")
    now = now or timezone.now()
    endpoints = subscribed_endpoints(org_id=org_id, event_type=event_type)
    if not endpoints:
        return None
    event = OutgoingEvent.objects.create(
        org_id=org_id,
        event_type=event_type,
        sequence=_next_sequence(org_id),
        data=data,
        created_at=now,
    )
    deliveries = EventDelivery.objects.bulk_create(
        [EventDelivery(event=event, endpoint=e, next_attempt_at=now, created_at=now) for e in endpoints]
    )
    ids = [delivery.pk for delivery in deliveries]
    transaction.on_commit(lambda: deliver_soon(ids))
    return event


def subscribed_endpoints(*, org_id: int, event_type: str) -> list[EventEndpoint]:
    """The active endpoints that receive `event_type` for this org."""
    # A handful of rows (a few endpoints per product): filtered here, the same on every database.
    active = EventEndpoint.objects.filter(deleted_at__isnull=True, disabled_at__isnull=True)
    endpoints = [endpoint for endpoint in active if event_type in endpoint.event_types]
    if endpoints and event_type in MEMBER_EVENT_TYPES:
        callers = set(ProductOrg.objects.filter(org_id=org_id).values_list("product_id", flat=True))
        endpoints = [endpoint for endpoint in endpoints if endpoint.product_id in callers]
    return endpoints


def _next_sequence(org_id: int) -> int:
    # One statement on PostgreSQL and SQLite alike; the row stays locked until the commit.
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO orgs_eventsequence (org_id, last) VALUES (%s, 1)"
            " ON CONFLICT (org_id) DO UPDATE SET last = orgs_eventsequence.last + 1 RETURNING last",
            [org_id],
        )
        return int(cursor.fetchone()[0])


DELIVER_BATCH_TASK = "orgs.tasks.deliver_event_batch"
# Deliveries sent together in one task: a task costs the broker and the worker more than a delivery.
BATCH = 50


def deliver_soon(delivery_ids: Iterable[int]) -> None:
    """Send the deliveries' tasks (after a commit): one task per delivery, or batches of 50. If the
    broker is down, the deliver_events job will."""
    ids = list(delivery_ids)
    try:
        # By name: the tasks module imports this one, never the reverse.
        if len(ids) == 1:
            current_app.signature(DELIVER_TASK, args=(ids[0],)).delay()
            return
        for start in range(0, len(ids), BATCH):
            current_app.signature(DELIVER_BATCH_TASK, args=(ids[start : start + BATCH],)).delay()
    except Exception:
        return  # the broker is down: the job sends every pending delivery that is due


def note_product_orgs(*, product_id: int, org_ids: Iterable[int]) -> None:
    """Record that a product has called about these orgs (it then receives their member.* events).
    Idempotent; free once this process has recorded a pair."""
    new = sorted({org_id for org_id in org_ids if (product_id, org_id) not in _known_product_orgs})
    if not new:
        return
    ProductOrg.objects.bulk_create(
        [ProductOrg(product_id=product_id, org_id=org_id) for org_id in new], ignore_conflicts=True
    )
    transaction.on_commit(lambda: _known_product_orgs.update((product_id, org_id) for org_id in new))


def forget_noted_product_orgs() -> None:
    """Forget what this process noted (the tests, whose databases are flushed between tests)."""
    _known_product_orgs.clear()
