"""Reads for usage."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, connections, transaction
from django.db.models import Sum
from django.db.models.functions import TruncDate, TruncMonth
from django.utils import timezone

from billing.exceptions import UnprocessableEvent
from billing.periods import month_end, month_of
from billing.services.payments import org_for_customer
from core.errors import InvalidRequest
from core.instants import floor_hour
from core.replicas import read_database
from orgs.models import Organization, Product
from usage.models import ROLLUP_CURSOR, RollupCursor, UsageArchive, UsageEvent
from usage.txids import snapshot_xmax, writers


def usage_summary(
    *, org: Organization, product: Product, start: datetime, end: datetime, metric: str | None = None
) -> dict[str, list[Mapping[str, Any]]]:
    """Quantity and cost per metric over [start, end), in total and per UTC day: sums of stored costs.

    On PostgreSQL whole hours come from the buckets (plus the events the rollup has not taken yet)
    and only the partial hours at the edges from the events; the answer is the same as summing
    the events. A partial hour of an archived month cannot be answered: InvalidRequest.
    """
    if connection.vendor != "postgresql":
        return _summary_from_events(org=org, product=product, start=start, end=end, metric=metric)
    first, last = ceil_hour(start), floor_hour(end)
    edges = [(start, end)] if first >= last else [(start, first), (last, end)]
    edges = [(low, high) for low, high in edges if low < high]
    _refuse_archived_edges(edges)
    whole = (first, last) if first < last else (start, start)  # an empty whole-hour range
    bounds = [bound for edge in edges for bound in edge]
    bounds += [start] * (4 - len(bounds))  # an empty edge
    params = {
        "org": org.pk,
        "product": product.pk,
        "metric": metric,
        "first": whole[0],
        "last": whole[1],
        **dict(zip(("e1", "e2", "e3", "e4"), bounds, strict=True)),
        "cursor": ROLLUP_CURSOR,
    }
    alias = read_database(UsageEvent)  # the replica inside replica_reads() (the API's summary view)
    with connections[alias].cursor() as cursor:
        horizon = (
            RollupCursor.objects.using(alias)
            .filter(name=ROLLUP_CURSOR)
            .values_list("horizon", flat=True)
            .first()
            or 0
        )
        for _ in range(5):  # a rollup committing between the two reads: read again
            cursor.execute(_SUMMARY, {**params, "horizon": horizon})
            rows = cursor.fetchall()
            if not rows or rows[0][0] == horizon:
                break
            horizon = rows[0][0]
    daily: list[Mapping[str, Any]] = [
        {"date": date, "metric": name, "quantity": q, "cost": c} for _, date, name, q, c in rows
    ]
    totals: dict[str, dict[str, Any]] = {}
    for row in daily:
        total = totals.setdefault(row["metric"], {"metric": row["metric"], "quantity": 0, "cost": 0})
        total["quantity"] += row["quantity"]
        total["cost"] += row["cost"]
    return {"totals": [totals[name] for name in sorted(totals)], "daily": daily}


# One statement, one snapshot: the buckets of the whole hours, the events of those hours that the
# rollup has not taken (ingest_txid at or above the horizon the caller read; the statement returns
# the horizon it saw, and the caller reads again if a rollup moved it in between), and the events
# of the partial hours at the edges.
_SUMMARY = """
WITH rows AS (
    SELECT hour AS at, metric, quantity, cost FROM usage_usagebucket
    WHERE org_id = %(org)s AND product_id = %(product)s AND hour >= %(first)s AND hour < %(last)s
      AND (%(metric)s::varchar IS NULL OR metric = %(metric)s)
    UNION ALL
    SELECT occurred_at, metric, quantity, cost FROM usage_usageevent
    WHERE org_id = %(org)s AND product_id = %(product)s AND occurred_at >= %(first)s
      AND occurred_at < %(last)s AND ingest_txid >= %(horizon)s
      AND (%(metric)s::varchar IS NULL OR metric = %(metric)s)
    UNION ALL
    SELECT occurred_at, metric, quantity, cost FROM usage_usageevent
    WHERE org_id = %(org)s AND product_id = %(product)s
      AND ((occurred_at >= %(e1)s AND occurred_at < %(e2)s)
           OR (occurred_at >= %(e3)s AND occurred_at < %(e4)s))
      AND (%(metric)s::varchar IS NULL OR metric = %(metric)s)
)
SELECT coalesce((SELECT horizon FROM usage_rollupcursor WHERE name = %(cursor)s), 0),
       (at AT TIME ZONE 'UTC')::date, metric, sum(quantity), sum(cost)
FROM rows GROUP BY 2, 3 ORDER BY 2, 3
"""


def _refuse_archived_edges(edges: list[tuple[datetime, datetime]]) -> None:
    """A partial hour needs raw events: refuse one in a month whose events are archived."""
    if not edges:
        return
    months = {
        month_of_instant(instant) for low, high in edges for instant in (low, high - timedelta.resolution)
    }
    archived = sorted(UsageArchive.objects.filter(month__in=months).values_list("month", flat=True))
    if archived:
        raise InvalidRequest(
            message="The raw events of this month are archived: ask for whole UTC hours.",
            details={
                "fields": {"from": ["Within an archived month, `from` and `to` must be whole UTC hours."]},
                "archived_months": [f"{month:%Y-%m}" for month in archived],
            },
        )


def _summary_from_events(
    *, org: Organization, product: Product, start: datetime, end: datetime, metric: str | None
) -> dict[str, list[Mapping[str, Any]]]:
    """The embedded default's way (its buckets are recomputed only when the rollup runs)."""
    events = UsageEvent.objects.filter(org=org, product=product, occurred_at__gte=start, occurred_at__lt=end)
    if metric:
        events = events.filter(metric=metric)
    totals = events.values("metric").annotate(quantity=Sum("quantity"), cost=Sum("cost")).order_by("metric")
    daily = (
        events.annotate(date=TruncDate("occurred_at", tzinfo=UTC))
        .values("date", "metric")
        .annotate(quantity=Sum("quantity"), cost=Sum("cost"))
        .order_by("date", "metric")
    )
    return {"totals": list(totals), "daily": list(daily)}


def month_of_instant(instant: datetime) -> datetime:
    instant = instant.astimezone(UTC)
    return datetime(instant.year, instant.month, 1, tzinfo=UTC)


def ceil_hour(instant: datetime) -> datetime:
    floor = floor_hour(instant)
    return floor if floor == instant else floor + timedelta(hours=1)


def monthly_usage(*, org: Organization, now: datetime) -> list[dict[str, Any]]:
    """This UTC calendar month's and the last one's usage per product and metric: quantity, credits
    and the overage billed, sums of stored values, newest month first."""
    this_month = month_of(now)
    last_month = month_of(datetime(this_month.year, this_month.month, 1, tzinfo=UTC) - timedelta(days=1))
    start = datetime(last_month.year, last_month.month, 1, tzinfo=UTC)
    rows = (
        UsageEvent.objects.filter(org=org, occurred_at__gte=start, occurred_at__lt=month_end(this_month))
        .annotate(month=TruncMonth("occurred_at", tzinfo=UTC))
        .values("month", "product__slug", "metric")
        .annotate(quantity=Sum("quantity"), cost=Sum("cost"), billed=Sum("billable_overage"))
        .order_by("-month", "product__slug", "metric")
    )
    return [{**row, "month": row["month"].date()} for row in rows]


# --- The rollup's lag ------------------------------------------------------------------------------

LAG_LIMIT = timedelta(minutes=15)


@dataclass(frozen=True)
class HorizonHolder:
    """The oldest transaction of this database with an id: the rollup cannot pass it."""

    pid: int | None  # None for a prepared transaction
    state: str | None  # None when our role may not see it (pg_read_all_stats shows it)
    age: timedelta | None
    application: str | None

    def as_dict(self) -> dict[str, Any]:
        age = None if self.age is None else int(self.age.total_seconds())
        return {
            "pid": self.pid,
            "state": self.state,
            "age_seconds": age,
            "application_name": self.application,
        }


@dataclass(frozen=True)
class RollupLag:
    """How far the buckets are behind: the age of the oldest committed event not rolled up yet."""

    lag: timedelta
    oldest_waiting_at: datetime | None
    holder: HorizonHolder | None
    measured: bool = True

    @property
    def lagging(self) -> bool:
        return self.lag > LAG_LIMIT

    def as_dict(self) -> dict[str, Any]:
        if not self.measured:
            return {"status": "not measured (the embedded default recomputes every run)"}
        return {
            "status": "lagging" if self.lagging else "ok",
            "lag_seconds": int(self.lag.total_seconds()),
            "oldest_waiting_event_at": self.oldest_waiting_at.isoformat() if self.oldest_waiting_at else None,
            "held_by": self.holder.as_dict() if self.holder else None,
        }

    def describe(self) -> str:
        text = f"Usage rollup is {_duration(self.lag)} behind (limit {_duration(LAG_LIMIT)})"
        if self.oldest_waiting_at is not None:
            text += f": events waiting since {self.oldest_waiting_at:%Y-%m-%d %H:%M:%S} UTC"
        if self.holder is None:
            return text + "; no transaction holds it back: is the rollup_usage job running?"
        holder = self.holder
        who = f"pid {holder.pid}" if holder.pid is not None else f"prepared transaction {holder.application}"
        return (
            f"{text}; held back by the transaction of {who} ({holder.state or 'state hidden'}, "
            f"open {_duration(holder.age) if holder.age else 'for an unknown time'}"
            f"{f', {holder.application}' if holder.application and holder.pid is not None else ''}). "
            "Overage waiting here is not reported to Stripe until it ends."
        )


def _duration(value: timedelta) -> str:
    minutes = int(value.total_seconds()) // 60
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


def rollup_lag(*, now: datetime | None = None) -> RollupLag:
    """The rollup's lag and what holds it back; one short read (at most 2 s, then DatabaseError)."""
    now = now or timezone.now()
    if connection.vendor != "postgresql":
        return RollupLag(lag=timedelta(0), oldest_waiting_at=None, holder=None, measured=False)
    cursor_horizon = RollupCursor.objects.filter(name=ROLLUP_CURSOR).values_list("horizon", flat=True)
    with transaction.atomic(), connection.cursor() as cursor:
        # Waiting events are read through the BRIN index on ingest_txid; a huge backlog must not
        # make the health check itself hang.
        cursor.execute("SET LOCAL statement_timeout = 2000")
        horizon = cursor_horizon.first() or 0
        cursor.execute(
            "SELECT min(received_at), min(ingest_txid) FROM usage_usageevent WHERE ingest_txid >= %s",
            [horizon],
        )
        oldest_at, oldest_txid = cursor.fetchone()
        holders = writers(cursor, near=snapshot_xmax(cursor)) if oldest_txid is not None else []
    # Only a transaction older than the oldest waiting event can be what keeps it waiting.
    holder = next((HorizonHolder(*row[1:]) for row in holders if row[0] < oldest_txid), None)
    lag = max(now - oldest_at, timedelta(0)) if oldest_at is not None else timedelta(0)
    return RollupLag(lag=lag, oldest_waiting_at=oldest_at, holder=holder)


# --- Closing periods -------------------------------------------------------------------------------

# Stripe finalizes a subscription's draft invoice about an hour after creating it, unless the
# invoice says when (`automatically_finalizes_at`).
DRAFT_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class ClosingPeriod:
    org_id: int
    invoice_id: str
    customer_id: str
    period_start: datetime
    period_end: datetime
    draft_until: datetime


def mirrored_invoice(invoice_id: str) -> dict[str, Any]:
    """The invoice as dj-stripe stored it while processing this delivery (re-read from Stripe)."""
    from djstripe.models import Invoice

    stripe_data: dict[str, Any] = Invoice.objects.values_list("stripe_data", flat=True).get(id=invoice_id)
    return stripe_data


def closing_period(invoice: dict[str, Any]) -> ClosingPeriod | None:
    """The subscription period a draft invoice closes, from Stripe's copy of the invoice; None when
    there is none to close (not a draft any more, no subscription, an empty period, no org)."""
    subscription = ((invoice.get("parent") or {}).get("subscription_details") or {}).get("subscription")
    if invoice.get("status") != "draft" or not subscription:
        return None
    if not invoice.get("period_end") or invoice["period_end"] <= (invoice.get("period_start") or 0):
        return None
    try:
        org = org_for_customer(invoice["customer"])
    except UnprocessableEvent:
        return None
    finalizes = invoice.get("automatically_finalizes_at") or invoice["created"] + DRAFT_WINDOW.total_seconds()
    return ClosingPeriod(
        org_id=org.pk,
        invoice_id=invoice["id"],
        customer_id=invoice["customer"],
        period_start=datetime.fromtimestamp(invoice.get("period_start") or 0, tz=UTC),
        period_end=datetime.fromtimestamp(invoice["period_end"], tz=UTC),
        draft_until=datetime.fromtimestamp(finalizes, tz=UTC),
    )
