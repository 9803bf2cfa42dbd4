"""Recording usage events: the hot path every product calls after each operation.

A batch is handled in one pass of plain Python (no per-event serializer), stored with one
set-based INSERT sorted by key, and debited once per org in the same transaction.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from psycopg.types.json import Jsonb

from billing.credits import CREDIT_LIMIT, parse_decimal
from billing.pricing import CostOutOfBounds, PriceBook, cost_of
from billing.selectors import price_book
from billing.services.debits import debit_usage
from core.instants import parse_instant
from orgs.models import Organization, Product
from orgs.services.events import note_product_orgs
from usage.exceptions import InvalidEvents
from usage.models import UsageEvent, UsageEventKey

EVENT_FIELDS = {"event_id", "org_id", "metric", "quantity", "occurred_at", "user_id", "properties"}
MAX_FUTURE = timedelta(minutes=5)
MAX_AGE = timedelta(days=35)


@dataclass
class NewEvent:
    """A valid, priced event ready to store."""

    event_id: str
    org_id: int
    metric: str
    price_id: int
    quantity: Decimal
    cost: Decimal
    occurred_at: datetime
    user_id: str = ""
    properties: dict[str, Any] | None = None
    pk: int | None = None
    overage: Decimal = Decimal(0)
    billable_overage: Decimal = Decimal(0)


def _occurred_at(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError("An RFC 3339 timestamp string is expected, e.g. 2026-11-22T10:00:00Z.")
    try:
        instant = parse_instant(value)
    except ValueError as error:
        raise ValueError(f"The timestamp {error}") from None
    assert instant is not None
    return instant


def _quantity_and_time(
    raw: dict[str, Any], errors: dict[str, list[str]], *, now: datetime
) -> tuple[Decimal | None, datetime | None]:
    """The event's quantity and occurred_at, each None when absent or invalid (its error recorded)."""
    quantity: Decimal | None = None
    occurred_at: datetime | None = None
    if "quantity" not in errors:
        try:
            quantity = parse_decimal(raw["quantity"])
        except ValueError as error:
            errors["quantity"] = [str(error)]
    if "occurred_at" not in errors:
        try:
            occurred_at = _occurred_at(raw["occurred_at"])
            if occurred_at > now + MAX_FUTURE:
                errors["occurred_at"] = ["More than 5 minutes in the future."]
            elif occurred_at < now - MAX_AGE:
                errors["occurred_at"] = ["Older than 35 days."]
        except ValueError as error:
            errors["occurred_at"] = [str(error)]
    return quantity, occurred_at


def _validate(
    raw: object, *, orgs: dict[str, int], prices: PriceBook, now: datetime
) -> tuple[NewEvent | None, dict[str, list[str]], bool]:
    """One event → (NewEvent or None, field errors, has unknown fields)."""
    if not isinstance(raw, dict):
        return None, {"event": ["An event is a JSON object."]}, False
    errors: dict[str, list[str]] = {}
    unknown = [key for key in raw if key not in EVENT_FIELDS]
    for key in unknown:
        errors[key] = ["This field is not known."]
    for key in ("event_id", "org_id", "metric", "quantity", "occurred_at"):
        if raw.get(key) is None:
            errors[key] = ["This field is required."]

    event_id = raw.get("event_id")
    if "event_id" not in errors and (not isinstance(event_id, str) or not 1 <= len(event_id) <= 128):
        errors["event_id"] = ["An event_id is a string of 1 to 128 characters."]
    org_id = raw.get("org_id")
    if "org_id" not in errors and (not isinstance(org_id, str) or orgs.get(org_id) is None):
        errors["org_id"] = ["No such organization."]
    metric = raw.get("metric")
    if "metric" not in errors and (not isinstance(metric, str) or metric not in prices):
        errors["metric"] = ["The calling product has no price for this metric."]
    quantity, occurred_at = _quantity_and_time(raw, errors, now=now)
    user_id = raw.get("user_id")
    if user_id is not None and (not isinstance(user_id, str) or len(user_id) > 128):
        errors["user_id"] = ["A user_id is a string of at most 128 characters."]
    properties = raw.get("properties")
    if properties is not None and not isinstance(properties, dict):
        errors["properties"] = ["Properties are a JSON object."]
    if errors:
        return None, errors, bool(unknown)
    # No errors: each field passed its check above.
    assert isinstance(event_id, str) and isinstance(org_id, str) and isinstance(metric, str)
    assert quantity is not None and occurred_at is not None

    price = prices.version_at(metric, occurred_at)
    if price is None:
        return None, {"metric": ["No price was in force at occurred_at."]}, False
    cost = cost_of(quantity, price.credits_per_unit)
    if cost >= CREDIT_LIMIT:
        return None, {"quantity": [CostOutOfBounds.message]}, False
    return (
        NewEvent(
            event_id=event_id,
            org_id=orgs[org_id],
            metric=metric,
            price_id=price.price_id,
            quantity=quantity,
            cost=cost,
            occurred_at=occurred_at,
            user_id=user_id or "",
            properties=properties,
        ),
        {},
        False,
    )


def record_usage_events(
    *, product: Product, events: list[Any], now: datetime | None = None
) -> dict[str, int]:
    """Store a batch of events and debit their costs, in one transaction; returns the counts.

    Duplicates first: an event_id this product already stored (or repeated in the batch) is
    counted, never stored or debited again, and never an error. Then all or nothing: if any new
    event is invalid, InvalidEvents lists them by index and nothing is stored. Events for a
    soft-deleted org are accepted: the work was done.
    """
    now = now or timezone.now()
    org_ids = {
        raw.get("org_id") for raw in events if isinstance(raw, dict) and isinstance(raw.get("org_id"), str)
    }
    orgs = dict(Organization.objects.filter(public_id__in=org_ids).values_list("public_id", "pk"))
    prices = price_book(product)

    duplicates, seen, new, invalid = 0, set(), [], []
    for index, raw in enumerate(events):
        event_id = raw.get("event_id") if isinstance(raw, dict) else None
        if isinstance(event_id, str):
            if event_id in seen:
                duplicates += 1
                continue
            seen.add(event_id)
        event, errors, unknown = _validate(raw, orgs=orgs, prices=prices, now=now)
        if event is None:
            invalid.append((index, event_id, errors, unknown))
        else:
            new.append(event)
    if invalid:
        # Only an invalid event needs looking up: if it was stored before, it is a duplicate, not an
        # error. Valid events find their stored twins in the INSERT below (ON CONFLICT DO NOTHING).
        stored = set(
            UsageEventKey.objects.filter(
                product_id=product.pk, event_id__in=[i[1] for i in invalid if isinstance(i[1], str)]
            )
            .order_by()
            .values_list("event_id", flat=True)
        )
        problems = [i for i in invalid if not (isinstance(i[1], str) and i[1] in stored)]
        duplicates += len(invalid) - len(problems)
        if problems:
            raise InvalidEvents(
                [{"index": index, "fields": errors} for index, _, errors, _ in problems],
                unknown_fields=any(unknown for *_, unknown in problems),
            )

    _check_batch_totals(new)
    with transaction.atomic():
        inserted = store_events(product=product, events=new, now=now)
    return {"accepted": len(inserted), "duplicates": duplicates + len(new) - len(inserted)}


def _check_batch_totals(events: list[NewEvent]) -> None:
    """A batch's total cost per org stays below the stored range (checked before any write)."""
    totals: dict[int, Decimal] = {}
    for event in events:
        totals[event.org_id] = totals.get(event.org_id, Decimal(0)) + event.cost
        if totals[event.org_id] >= CREDIT_LIMIT:
            raise InvalidEvents.batch_total(CostOutOfBounds.message)


def store_events(
    *, product: Product, events: list[NewEvent], now: datetime, ending_holds: dict[int, Decimal] | None = None
) -> list[NewEvent]:
    """Insert the events (a concurrent twin is skipped), then debit the stored ones per org
    (`ending_holds`: the costs of holds this write commits, per org). Returns the stored events.
    Call inside a transaction."""
    inserted = _insert(product, events, now)
    # Usage is a product calling about an org: it then receives the org's member.* events.
    note_product_orgs(product_id=product.pk, org_ids={event.org_id for event in inserted})
    costs_by_org: dict[int, list[tuple[int, Decimal]]] = {}
    for event in inserted:
        assert event.pk is not None  # set by _insert
        costs_by_org.setdefault(event.org_id, []).append((event.pk, event.cost))
    overages = debit_usage(
        costs_by_org=costs_by_org, reference=f"usage:{uuid.uuid4().hex}", now=now, ending_holds=ending_holds
    )
    for event in inserted:
        if event.pk in overages:
            overage, billable = overages[event.pk]
            event.overage, event.billable_overage = overage, overage if billable else Decimal(0)
    _set_overages([event for event in inserted if event.overage])
    return inserted


# The batch order is kept for the debit; the inserts are sorted by key, so that concurrent batches
# sharing event_ids take their index locks in one order and never deadlock. The key goes first
# (UsageEventKey: the one unique index on event_id, whatever the partition); only the events whose
# key is new are stored, in the same statement.
_INSERT = """
WITH e AS (
    SELECT * FROM unnest(%(event_id)s::varchar[], %(org_id)s::bigint[], %(user_id)s::varchar[],
                         %(metric)s::varchar[], %(price_id)s::bigint[], %(quantity)s::numeric[],
                         %(cost)s::numeric[], %(occurred_at)s::timestamptz[], %(properties)s::jsonb[])
        AS e(event_id, org_id, user_id, metric, price_id, quantity, cost, occurred_at, properties)
), k AS (
    INSERT INTO usage_usageeventkey (product_id, event_id, org_id, occurred_at)
    SELECT %(product)s, e.event_id, e.org_id, e.occurred_at FROM e
    ORDER BY e.event_id
    ON CONFLICT (product_id, event_id) DO NOTHING
    RETURNING event_id
)
INSERT INTO usage_usageevent (product_id, event_id, org_id, user_id, metric, price_id, quantity, cost,
                              overage, billable_overage, occurred_at, received_at, properties)
SELECT %(product)s, e.event_id, e.org_id, e.user_id, e.metric, e.price_id, e.quantity, e.cost, 0, 0,
       e.occurred_at, %(now)s, e.properties
FROM e JOIN k USING (event_id)
ORDER BY e.event_id
RETURNING id, event_id
"""


def _insert(product: Product, events: list[NewEvent], now: datetime) -> list[NewEvent]:
    if not events:
        return []
    if connection.vendor != "postgresql":
        return _insert_one_by_one(product, events, now)
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT,
            {
                "product": product.pk,
                "now": now,
                "event_id": [e.event_id for e in events],
                "org_id": [e.org_id for e in events],
                "user_id": [e.user_id for e in events],
                "metric": [e.metric for e in events],
                "price_id": [e.price_id for e in events],
                "quantity": [e.quantity for e in events],
                "cost": [e.cost for e in events],
                "occurred_at": [e.occurred_at for e in events],
                "properties": [Jsonb(e.properties or {}) for e in events],
            },
        )
        ids = dict((event_id, pk) for pk, event_id in cursor.fetchall())
    stored = []
    for event in events:
        if event.event_id in ids:
            event.pk = ids[event.event_id]
            stored.append(event)
    return stored


def _insert_one_by_one(product: Product, events: list[NewEvent], now: datetime) -> list[NewEvent]:
    """The embedded default (SQLite) path: a savepoint per event, same outcome, slower."""
    stored = []
    for event in events:
        try:
            with transaction.atomic():
                UsageEventKey.objects.create(
                    product_id=product.pk,
                    event_id=event.event_id,
                    org_id=event.org_id,
                    occurred_at=event.occurred_at,
                )
                event.pk = UsageEvent.objects.create(
                    product=product,
                    event_id=event.event_id,
                    org_id=event.org_id,
                    user_id=event.user_id,
                    metric=event.metric,
                    price_id=event.price_id,
                    quantity=event.quantity,
                    cost=event.cost,
                    occurred_at=event.occurred_at,
                    received_at=now,
                    properties=event.properties or {},
                ).pk
        except IntegrityError:
            continue
        stored.append(event)
    return stored


def _set_overages(events: list[NewEvent]) -> None:
    """Write the overage debit_usage found (the insert wrote 0): one statement."""
    if not events:
        return
    if connection.vendor != "postgresql":
        for event in events:
            assert event.pk is not None  # set by _insert
            UsageEvent.objects.filter(pk=event.pk).update(
                overage=event.overage, billable_overage=event.billable_overage
            )
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE usage_usageevent AS e SET overage = v.overage, billable_overage = v.billable"
            " FROM unnest(%s::bigint[], %s::timestamptz[], %s::numeric[], %s::numeric[])"
            " AS v(id, occurred_at, overage, billable)"
            " WHERE e.id = v.id AND e.occurred_at = v.occurred_at",  # the key: one partition each
            [
                [e.pk for e in events],
                [e.occurred_at for e in events],
                [e.overage for e in events],
                [e.billable_overage for e in events],
            ],
        )
