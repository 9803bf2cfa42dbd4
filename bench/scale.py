"""bench/scale: the usage history at scale — ingestion, the summary, the rollup, partitions, archive.

In its own database (`billing_bench`), with 200 orgs:
1. ingestion with no stored events: `record_usage_events` (the service the API calls), batches of
   1000 events over 50 orgs, for --seconds; events/s;
2. N million stored events (default 20) generated with set-based SQL (events and their keys, one
   statement per million) over the last 14 months, one partition a month; the time it took;
3. the rollup of all of them (the real job): seconds per million;
4. ingestion again, as in 1: the ratio to 1 (target ≥ 0.9);
5. the usage summary (the selector behind GET /orgs/{id}/usage) for a random org over a random
   30-day range with partial hours at both edges, 300 times: p50/p99 (target p99 ≤ 50 ms);
6. making one month's partition (empty) and archiving the oldest month (export, checksum, drop).
"""

import argparse
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import fresh_database, percentile, say, setup_django

MONTHS = 14
GENERATE = """
WITH e AS (
    INSERT INTO usage_usageevent (product_id, event_id, org_id, user_id, metric, price_id, quantity,
                                  cost, overage, billable_overage, occurred_at, received_at, properties)
    SELECT %(product)s::bigint, 'stored-' || n, (%(orgs)s::bigint[])[1 + n %% %(org_count)s::int], 'member',
           'fix_run', %(price)s::bigint, 1, 2.5, 0, 0,
           %(first)s::timestamptz + ((n * 7919) %% %(span)s::bigint) * interval '1 second', now(), '{}'
    FROM generate_series(%(start)s::bigint, %(stop)s::bigint) AS n
    RETURNING product_id, event_id, org_id, occurred_at
)
INSERT INTO usage_usageeventkey (product_id, event_id, org_id, occurred_at) SELECT * FROM e
"""


def ingest(seeded, product, seconds: float, tag: str) -> float:
    from usage.services.events import record_usage_events

    orgs, sent, batch = seeded["org_ids"], 0, 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        now = datetime.now(UTC)
        events = [
            {"event_id": f"{tag}-{batch}-{i}", "org_id": orgs[(batch + i) % 50], "metric": "fix_run",
             "quantity": "1", "occurred_at": now.isoformat()}
            for i in range(1000)
        ]  # fmt: skip
        sent += record_usage_events(product=product, events=events)["accepted"]
        batch += 1
    return sent / (time.perf_counter() - started)


def generate(seeded, org_pks, total: int, first: datetime, now: datetime) -> float:
    from django.db import connection, transaction

    started = time.perf_counter()
    span = int((now - first).total_seconds())
    for start in range(0, total, 1_000_000):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                GENERATE,
                {"product": seeded["product_id"], "price": seeded["price_id"], "orgs": org_pks,
                 "org_count": len(org_pks), "first": first, "span": span, "start": start,
                 "stop": min(start + 1_000_000, total) - 1},
            )  # fmt: skip
        say(f"  {min(start + 1_000_000, total):,} stored")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE usage_usageevent")
        cursor.execute("VACUUM ANALYZE usage_usageeventkey")
    return time.perf_counter() - started


def summaries(org_model, product, count: int, now: datetime) -> list[float]:
    from usage.selectors import usage_summary

    orgs = list(org_model.objects.filter(name__startswith="Bench"))
    timings = []
    for _ in range(count):
        end = now - timedelta(days=random.randint(0, 360), minutes=random.randint(1, 59))
        start = end - timedelta(days=30, minutes=random.randint(1, 59))
        began = time.perf_counter()
        usage_summary(org=random.choice(orgs), product=product, start=start, end=end)
        timings.append((time.perf_counter() - began) * 1000)
    return timings


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--millions", type=float, default=20)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    total = int(args.millions * 1_000_000)

    fresh_database()
    setup_django()
    from bench_seed import seed
    from django.conf import settings
    from django.db import connection

    from orgs.models import Organization, Product
    from usage.services.archive import archive_usage_partitions
    from usage.services.partitions import add_months, create_usage_partitions, month_start
    from usage.services.rollup import rollup_usage

    seeded = seed(orgs=200)
    product = Product.objects.get(slug="red")
    org_pks = list(Organization.objects.filter(name__startswith="Bench").values_list("pk", flat=True))
    now = datetime.now(UTC)
    first = add_months(month_start(now), -(MONTHS - 1))
    create_usage_partitions(now=first, months_ahead=MONTHS + 2)

    say(f"ingesting for {args.seconds:.0f} s with no stored events")
    empty_rate = ingest(seeded, product, args.seconds, "empty")
    rollup_usage()
    say(f"generating {total:,} stored events over {MONTHS} months")
    generated = generate(seeded, org_pks, total, first, now)
    say("rolling them up")
    began = time.perf_counter()
    rollup_usage()
    rollup_seconds = time.perf_counter() - began
    say(f"ingesting for {args.seconds:.0f} s with {total:,} stored events")
    full_rate = ingest(seeded, product, args.seconds, "full")
    rollup_usage()
    say("usage summaries")
    timings = summaries(Organization, product, 300, now)

    began = time.perf_counter()
    created = create_usage_partitions(now=add_months(month_start(now), 24), months_ahead=0)
    create_ms = (time.perf_counter() - began) * 1000
    settings.USAGE_ARCHIVE_DIR = Path(tempfile.mkdtemp(prefix="usage-archive-"))
    settings.USAGE_EVENT_RETENTION_MONTHS = MONTHS - 2  # the oldest month is past it
    began = time.perf_counter()
    archived = archive_usage_partitions(now=now)
    archive_seconds = time.perf_counter() - began
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_size_pretty(pg_total_relation_size('usage_usageeventkey'))")
        key_size = cursor.fetchone()[0]

    say("results (the machine is shared with other jobs: expect ±30 %)")
    print(f"ingest, no stored events:      {empty_rate:,.0f} events/s")
    print(
        f"ingest, {total:,} stored: {full_rate:,.0f} events/s  "
        f"ratio {full_rate / empty_rate:.2f} (target ≥ 0.9)"
    )
    print(f"generating {total:,} stored events + keys: {generated:.0f} s; key table {key_size}")
    print(f"rollup: {rollup_seconds / max(args.millions, 1e-9):.1f} s per million ({rollup_seconds:.0f} s)")
    print(f"usage summary, 30 days, {len(timings)} calls: p50 {percentile(timings, 50):.1f} ms, "
          f"p99 {percentile(timings, 99):.1f} ms (target p99 ≤ 50 ms)")  # fmt: skip
    print(f"create one month's partition: {create_ms:.0f} ms ({created['created']})")
    for month in archived["archived"]:
        print(f"archive {month['month']}: {month['rows']:,} rows in {archive_seconds:.1f} s")
    if archived["waiting"]:
        print(f"waiting: {archived['waiting']}")


if __name__ == "__main__":
    main()
