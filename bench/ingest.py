"""bench/ingest: usage events through the real HTTP endpoint, against a raw-INSERT baseline.

API: POST /api/v1/usage/events, batches of 1000 events (spread over 50 orgs, so each batch also
debits 50 ledgers), gunicorn with 2 sync workers, durable PostgreSQL, 2 and 4 concurrent clients.
Baseline, in the same run and at the same concurrency: the same rows inserted into the same table
by psycopg, one `INSERT … SELECT … FROM unnest(…) ON CONFLICT DO NOTHING` (and commit) per batch.
Prints events/s, p50/p99 per batch and the ratio API/baseline. Target: ≥ 15 000 events/s, ≥ 0.5.
"""

import argparse
import json
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal

import psycopg
import requests
from common import ENV, fresh_database, gunicorn, percentile, say, setup_django
from psycopg.types.json import Jsonb

BATCH = 1000


def batches(org_ids, tag: str, count: int) -> list[list[dict]]:
    now = datetime.now(UTC).isoformat()
    return [
        [
            {
                "event_id": f"{tag}-{b}-{i}",
                "org_id": org_ids[i % len(org_ids)],
                "metric": "fix_run",
                "quantity": "1",
                "occurred_at": now,
                "user_id": "member",
            }
            for i in range(BATCH)
        ]
        for b in range(count)
    ]


def run_clients(clients: int, seconds: float, send) -> tuple[int, list[float], float]:
    """Each client sends its batches until time is up; returns (events, latencies, elapsed)."""
    latencies: list[float] = []
    events = [0]
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client(index: int):
        for body in send.bodies[index]:
            if time.perf_counter() >= deadline:
                return
            started = time.perf_counter()
            accepted = send(index, body)
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                events[0] += accepted

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return events[0], latencies, time.perf_counter() - started


class ApiSender:
    def __init__(self, url, key, bodies):
        self.url, self.bodies = f"{url}/api/v1/usage/events", bodies
        self.sessions = [requests.Session() for _ in bodies]
        self.headers = {"Authorization": f"Api-Key {key}", "Content-Type": "application/json"}

    def __call__(self, index, body):
        response = self.sessions[index].post(self.url, data=body, headers=self.headers, timeout=60)
        if response.status_code != 202:
            raise RuntimeError(f"{response.status_code}: {response.text[:300]}")
        return response.json()["accepted"]


class RawSender:
    """The floor: the same rows, the same table, one unnest INSERT and one commit per batch."""

    SQL = """
        INSERT INTO usage_usageevent (product_id, event_id, org_id, user_id, metric, price_id, quantity, cost,
                                      overage, billable_overage, occurred_at, received_at, properties)
        SELECT %s, e.event_id, e.org_id, e.user_id, e.metric, e.price_id, e.quantity, e.cost, 0, 0,
               e.occurred_at, now(), e.properties
        FROM unnest(%s::varchar[], %s::bigint[], %s::varchar[], %s::varchar[], %s::bigint[], %s::numeric[],
                    %s::numeric[], %s::timestamptz[], %s::jsonb[])
             AS e(event_id, org_id, user_id, metric, price_id, quantity, cost, occurred_at, properties)
        ORDER BY e.event_id
        ON CONFLICT (product_id, event_id) DO NOTHING
    """

    def __init__(self, seeded, org_pks, bodies):
        self.seeded, self.org_pks = seeded, org_pks
        self.bodies = [[self.rows(json.loads(body)["events"]) for body in client] for client in bodies]
        self.connections = [psycopg.connect(ENV["DATABASE_URL"]) for _ in bodies]

    def rows(self, events):
        return [
            [e["event_id"] for e in events],
            [self.org_pks[e["org_id"]] for e in events],
            [e["user_id"] for e in events],
            [e["metric"] for e in events],
            [self.seeded["price_id"]] * len(events),
            [Decimal(e["quantity"]) for e in events],
            [Decimal("2.5")] * len(events),
            [datetime.fromisoformat(e["occurred_at"]) for e in events],
            [Jsonb({}) for _ in events],
        ]

    def __call__(self, index, rows):
        with self.connections[index].transaction():
            cursor = self.connections[index].execute(self.SQL, [self.seeded["product_id"], *rows])
        return cursor.rowcount


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--clients", type=int, nargs="+", default=[2, 4])
    args = parser.parse_args()

    fresh_database()
    setup_django()
    from bench_seed import seed

    seeded = seed(orgs=50)
    from orgs.models import Organization

    org_pks = dict(Organization.objects.values_list("public_id", "pk"))
    per_client = int(args.seconds * 40) + 10  # more batches than any client can send in time
    results = []
    with gunicorn(workers=2) as url:
        say("warming up")
        warm = ApiSender(
            url, seeded["key"], [[json.dumps({"events": b}) for b in batches(seeded["org_ids"], "warm", 3)]]
        )
        run_clients(1, 60, warm)
        for clients in args.clients:
            say(f"{clients} clients: preparing batches")
            api_bodies = [
                [
                    json.dumps({"events": b})
                    for b in batches(seeded["org_ids"], f"api{clients}c{c}", per_client)
                ]
                for c in range(clients)
            ]
            raw_bodies = [
                [
                    json.dumps({"events": b})
                    for b in batches(seeded["org_ids"], f"raw{clients}c{c}", per_client)
                ]
                for c in range(clients)
            ]
            api_events, api_lat, api_time = run_clients(
                clients, args.seconds, ApiSender(url, seeded["key"], api_bodies)
            )
            raw_events, raw_lat, raw_time = run_clients(
                clients, args.seconds, RawSender(seeded, org_pks, raw_bodies)
            )
            results.append((clients, api_events / api_time, api_lat, raw_events / raw_time, raw_lat))
            say(f"{clients} clients done")

    print()
    print(
        f"bench/ingest — batches of {BATCH} events over 50 orgs, gunicorn 2 sync workers, durable PostgreSQL"
    )
    header = ["clients", "API events/s", "p50 ms", "p99 ms", "raw events/s", "p50 ms", "p99 ms", "ratio"]
    print(" ".join(f"{h:>12}" for h in header))
    for clients, api_rate, api_lat, raw_rate, raw_lat in results:
        row = [
            clients,
            f"{api_rate:,.0f}",
            f"{percentile(api_lat, 50) * 1000:.0f}",
            f"{percentile(api_lat, 99) * 1000:.0f}",
            f"{raw_rate:,.0f}",
            f"{percentile(raw_lat, 50) * 1000:.0f}",
            f"{percentile(raw_lat, 99) * 1000:.0f}",
            f"{api_rate / raw_rate:.2f}",
        ]
        print(" ".join(f"{cell:>12}" for cell in row))
    print("targets: ≥ 15 000 API events/s, ratio ≥ 0.5")


if __name__ == "__main__":
    main()
