"""bench/rollup: roll up N million generated usage events (default 2) into hourly buckets.

The events (200 orgs × 2 metrics over 7 days, inserted in 10 000-row transactions, so they carry
many transaction ids) are rolled up by the real job, `usage.services.rollup.rollup_usage`, and, as
the baseline on the same data, by the bare `INSERT … SELECT … GROUP BY … ON CONFLICT DO UPDATE`
into an empty copy of the bucket table. Each runs twice, alternating, from empty buckets; the
medians are printed with the ratio. Target: ≤ 1.3× the baseline and ≤ 5 s per million events.
"""

import argparse
import statistics
import time

from common import fresh_database, say, setup_django

GENERATE = """
INSERT INTO usage_usageevent (product_id, event_id, org_id, user_id, metric, price_id, quantity, cost,
                              overage, billable_overage, occurred_at, received_at, properties)
SELECT %(product)s::bigint, 'bench-' || n, (%(orgs)s::bigint[])[1 + n %% %(org_count)s::int], 'member',
       CASE WHEN n %% 2 = 0 THEN 'fix_run' ELSE 'review' END, %(price)s::bigint, 1, 2.5,
       CASE WHEN n %% 10 = 0 THEN 2.5 ELSE 0 END, CASE WHEN n %% 10 = 0 THEN 2.5 ELSE 0 END,
       timestamptz '2026-11-13 00:00:00+00' + ((n * 7919) %% 604800) * interval '1 second', now(), '{}'
FROM generate_series(%(start)s::bigint, %(stop)s::bigint) AS n
"""

BASELINE = """
INSERT INTO bench_baseline_bucket AS b
       (org_id, product_id, metric, hour, quantity, cost, overage, billable_overage, events, updated_at)
SELECT org_id, product_id, metric, date_trunc('hour', occurred_at, 'UTC'),
       sum(quantity), sum(cost), sum(overage), sum(billable_overage), count(*), now()
FROM usage_usageevent
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


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--millions", type=float, default=2)
    args = parser.parse_args()
    total = int(args.millions * 1_000_000)

    fresh_database()
    setup_django()
    from bench_seed import seed
    from django.db import connection, transaction

    from usage.models import RollupCursor, UsageBucket
    from usage.services.rollup import rollup_usage

    seeded = seed(orgs=200)
    from orgs.models import Organization

    org_pks = list(Organization.objects.filter(name__startswith="Bench").values_list("pk", flat=True))
    say(f"generating {total:,} events in 10 000-event transactions")
    started = time.perf_counter()
    for start in range(0, total, 10_000):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                GENERATE,
                {
                    "product": seeded["product_id"],
                    "price": seeded["price_id"],
                    "orgs": org_pks,
                    "org_count": len(org_pks),
                    "start": start,
                    "stop": min(start + 10_000, total) - 1,
                },
            )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE usage_usageevent")
        cursor.execute("CREATE TABLE bench_baseline_bucket (LIKE usage_usagebucket INCLUDING ALL)")
    say(f"generated in {time.perf_counter() - started:.0f} s")

    def ours() -> float:
        UsageBucket.objects.all().delete()
        RollupCursor.objects.all().delete()
        started = time.perf_counter()
        rollup_usage()
        return time.perf_counter() - started

    def baseline() -> float:
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE bench_baseline_bucket")
            started = time.perf_counter()
            with transaction.atomic():
                cursor.execute(BASELINE)
            return time.perf_counter() - started

    runs = {"ours": [], "baseline": []}
    for round_ in range(2):
        say(f"round {round_ + 1}: baseline, then rollup_usage")
        runs["baseline"].append(baseline())
        runs["ours"].append(ours())
    buckets = UsageBucket.objects.count()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), sum(events) FROM bench_baseline_bucket")
        baseline_buckets, baseline_events = cursor.fetchone()
    assert buckets == baseline_buckets and baseline_events == total, "the two disagree"

    ours_s, base_s = statistics.median(runs["ours"]), statistics.median(runs["baseline"])
    print()
    print(f"bench/rollup — {total:,} events into {buckets:,} hourly buckets, durable PostgreSQL, median of 2")
    for name, seconds, key in (
        ("rollup_usage", ours_s, "ours"),
        ("bare INSERT…GROUP BY", base_s, "baseline"),
    ):
        per_million = seconds / (total / 1e6)
        rounded = [round(run, 2) for run in runs[key]]
        print(f"{name:<22} {seconds:6.2f} s   ({per_million:.2f} s per million)   runs {rounded}")
    print(f"ratio: {ours_s / base_s:.2f}")
    print("targets: ≤ 1.3× the baseline, ≤ 5 s per million")


if __name__ == "__main__":
    main()
