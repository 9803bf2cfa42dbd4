"""What one usage event costs the PostgreSQL primary: WAL bytes and on-disk bytes (table and
indexes) per event stored through the ingestion service (batches of 1000 over 50 orgs, ledger
debits included), and the rollup's WAL per event. Figures for docs/CAPACITY.md.

WAL is the server's, so anything else writing to the same server counts too: the smallest of the
rounds is printed (the closest to this work alone). Uses its own databases
(`billing_bench_wal`, from `billing_bench_wal_template`).

    .venv/bin/python bench/wal.py [--batches 20] [--rounds 3]
"""

import argparse

import common
from common import ENV, SERVER, say

common.TEMPLATE, common.DATABASE = "billing_bench_wal_template", "billing_bench_wal"
ENV["DATABASE_URL"] = f"{SERVER}/{common.DATABASE}"


def wal_lsn(cursor) -> int:
    cursor.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint")
    return cursor.fetchone()[0]


def sizes(cursor) -> int:
    cursor.execute("SELECT pg_total_relation_size('usage_usageevent')")
    return cursor.fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    common.fresh_database()
    common.setup_django()
    from bench_seed import seed
    from django.db import connection
    from ingest import batches

    from orgs.models import Product
    from usage.services.events import record_usage_events
    from usage.services.rollup import rollup_usage

    seeded = seed(orgs=50)
    product = Product.objects.get(pk=seeded["product_id"])
    record_usage_events(product=product, events=batches(seeded["org_ids"], "warm", 1)[0])
    ingest, disk, rollup = [], [], []
    with connection.cursor() as cursor:
        for round_ in range(args.rounds):
            work = batches(seeded["org_ids"], f"r{round_}", args.batches)
            events = sum(len(batch) for batch in work)
            before, size_before = wal_lsn(cursor), sizes(cursor)
            for batch in work:
                record_usage_events(product=product, events=batch)
            after = wal_lsn(cursor)
            ingest.append((after - before) / events)
            disk.append((sizes(cursor) - size_before) / events)
            rollup_usage()
            rollup.append((wal_lsn(cursor) - after) / events)
            say(f"round {round_ + 1}: {ingest[-1]:.0f} B WAL/event, {disk[-1]:.0f} B on disk/event")
    print(f"ingest WAL per event (min of {args.rounds}): {min(ingest):.0f} bytes")
    print(f"usage_usageevent growth per event (table + indexes, min): {min(disk):.0f} bytes")
    print(f"rollup WAL per event (min): {min(rollup):.0f} bytes")


if __name__ == "__main__":
    main()
