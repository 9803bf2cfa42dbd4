"""bench/webhooks: Stripe webhooks acknowledged, then drained by Celery workers, in one run.

Acknowledgements: signed invoice.payment_failed / invoice.paid deliveries (a new event for a
distinct invoice each, over 50 orgs) posted to /stripe/webhook/<uuid>/ served by gunicorn (2 sync
workers, durable PostgreSQL) as in production, with no worker running: each answer is the
signature check and the durable store only. Baseline, same run and clients: GET /healthz (one
database and one Redis round trip). Drain: then a Celery worker with two processes (prefork,
concurrency 2) processes the stored events (dj-stripe's sync and the receivers, Stripe being the
test stand-in running in this process); the rate is measured from the first to the last event
processed. The time to drain a burst of 30 000 invoice events (a 10 000-customer invoice run) is
printed from that rate, or measured with --events 30000.

Targets: acks ≥ 400/s with p99 ≤ 50 ms; drain ≥ 80 events/s with two worker processes.
"""

import argparse
import json
import resource
import subprocess
import threading
import time
from datetime import UTC, datetime

import requests
from common import ENV, PYTHON, ROOT, fresh_database, gunicorn, percentile, say, setup_django

SECRET = "whsec_bench_secret"
API_KEY = "sk_test_51BenchBenchBenchBench000000000000"
BURST = 30_000


def seed_stripe(standin, orgs):
    """The catalog, a customer and a pro subscription per org, in the stand-in and dj-stripe's rows."""
    import stripe
    from django.db import transaction
    from djstripe.models import Account, APIKey, WebhookEndpoint

    from billing.models import Plan
    from billing.services.catalog_sync import sync_stripe_catalog
    from billing.services.checkout import ensure_customer

    stripe.api_base = standin.url
    account = Account.objects.create(
        id=standin.account["id"],
        livemode=False,
        stripe_data=standin.account,
        created=datetime.fromtimestamp(standin.account["created"], tz=UTC),
    )
    APIKey.objects.create(secret=API_KEY, type="secret", livemode=False, djstripe_owner_account=account)
    endpoint = WebhookEndpoint.objects.create(
        id="we_bench",
        url="https://bench.example/stripe/webhook/",
        enabled_events=["*"],
        status="enabled",
        api_version=ENV["STRIPE_API_VERSION_PIN"],
        secret=SECRET,
        livemode=False,
        djstripe_owner_account=account,
    )
    sync_stripe_catalog()
    pro = Plan.objects.get(name="pro")
    subscriptions = {}
    for org in orgs:
        with transaction.atomic():
            customer_id = ensure_customer(org)
        subscriptions[customer_id] = standin.add_subscription(
            customer_id, items=[pro.stripe_price_id, pro.stripe_overage_price_id]
        )
    return endpoint, pro, subscriptions


def build_events(standin, pro, subscriptions, count: int) -> list[bytes]:
    events = []
    customers = list(subscriptions)
    for n in range(count):
        customer = customers[n % len(customers)]
        paid = n % 2 == 1
        invoice = standin.add_invoice(
            customer,
            subscription=subscriptions[customer],
            status="paid" if paid else "open",
            lines=[(pro.stripe_price_id, 4900)],
        )
        event = standin.event("invoice.paid" if paid else "invoice.payment_failed", invoice["id"])
        events.append(json.dumps(event).encode())
    return events


def hammer(url: str, requests_: list, clients: int) -> tuple[list[float], list[int], float]:
    """Send (method, path, body, headers) requests from `clients` threads; latencies, statuses, wall."""
    latencies, statuses, lock = [], [], threading.Lock()
    queue = list(requests_)

    def client():
        session = requests.Session()
        while True:
            with lock:
                if not queue:
                    return
                method, path, body, headers = queue.pop()
            started = time.perf_counter()
            response = session.request(method, url + path, data=body, headers=headers, timeout=30)
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                statuses.append(response.status_code)

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, statuses, time.perf_counter() - started


def drain(count: int, concurrency: int) -> tuple[float, float, int]:
    """Start a worker with `concurrency` processes; (seconds first→last processed, total, how many
    were processed at the first look)."""
    from billing.models import ReceivedStripeEvent, StripeEventStatus

    worker = subprocess.Popen(
        [PYTHON, "-m", "celery", "-A", "billingsite", "worker", "--pool", "prefork",
         "--concurrency", str(concurrency), "--loglevel", "warning", "--without-heartbeat",
         "--without-gossip", "--without-mingle"],
        cwd=ROOT,
        env=ENV,
    )  # fmt: skip
    started = time.perf_counter()
    first = None
    try:
        while True:
            done = ReceivedStripeEvent.objects.filter(status=StripeEventStatus.PROCESSED).count()
            if done and first is None:
                first = (time.perf_counter(), done)
            if done >= count:
                break
            time.sleep(0.2)
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    finished = time.perf_counter()
    return finished - first[0], finished - started, first[1]


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--processes", type=int, default=2, help="Celery worker processes")
    args = parser.parse_args()

    from tests.stripe_standin.server import StripeStandin, sign_webhook

    standin = StripeStandin().start()
    ENV.update(STRIPE_API_HOST=standin.url, STRIPE_TEST_SECRET_KEY=API_KEY)
    fresh_database()
    setup_django()
    from django.conf import settings

    from billingsite import celery_app

    ENV["STRIPE_API_VERSION_PIN"] = settings.STRIPE_API_VERSION
    celery_app.control.purge()
    from bench_seed import seed

    seed(orgs=50)
    from orgs.models import Organization

    say("seeding the Stripe stand-in")
    endpoint, pro, subscriptions = seed_stripe(standin, Organization.objects.filter(name__startswith="Bench"))
    say(f"building {args.events} events")
    bodies = build_events(standin, pro, subscriptions, args.events)
    path = f"/stripe/webhook/{endpoint.djstripe_uuid}/"
    # Signed just before sending: the signature's timestamp must be recent (300 s tolerance).
    signed = []

    with gunicorn(workers=args.workers) as url:
        say("baseline: GET /healthz")
        base = [("GET", "/healthz", None, {})] * min(args.events, 3000)
        base_latencies, _, base_wall = hammer(url, base, args.clients)
        say(f"acknowledging {args.events} deliveries with {args.clients} concurrent clients")
        for body in bodies:
            headers = {"Content-Type": "application/json", **sign_webhook(body, SECRET)}
            signed.append(("POST", path, body, headers))
        cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        latencies, statuses, wall = hammer(url, signed, args.clients)
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # gunicorn's whole life (start, baseline, acks): its workers are counted once it has exited.
    gunicorn_cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)

    say(f"draining with a Celery worker of {args.processes} processes")
    standin.requests.clear()
    own_before = resource.getrusage(resource.RUSAGE_SELF)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    steady, total, head = drain(args.events, args.processes)
    own_after = resource.getrusage(resource.RUSAGE_SELF)
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    worker_cpu = (children_after.ru_utime + children_after.ru_stime) - (
        children_before.ru_utime + children_before.ru_stime
    )
    standin.stop()

    from billing.models import PaymentFailure, ReceivedStripeEvent

    acks = len(latencies) / wall
    rate = (args.events - head) / steady if steady > 0 else float("nan")
    print()
    print(f"bench/webhooks — {args.events} signed invoice deliveries over 50 orgs, {args.clients} clients, "
          f"gunicorn {args.workers} sync workers, Celery {args.processes} processes")  # fmt: skip
    failed = sum(s != 200 for s in statuses)
    print(f"acks/s: {acks:.0f}   p50: {percentile(latencies, 50) * 1000:.1f} ms"
          f"   p99: {percentile(latencies, 99) * 1000:.1f} ms   non-200: {failed}")  # fmt: skip
    base_rate = len(base_latencies) / base_wall
    print(f"baseline GET /healthz: {base_rate:.0f}/s   p99: {percentile(base_latencies, 99) * 1000:.1f} ms"
          f"   ratio acks/baseline: {acks / base_rate:.2f}")  # fmt: skip
    per_ack = gunicorn_cpu / len(latencies) * 1000
    print(f"gunicorn CPU, whole run: {gunicorn_cpu:.1f} s (≤ {per_ack:.1f} ms per ack)")
    print(f"drain: {rate:.0f} events/s (first to last processed; {total:.1f} s with the worker's start)")
    own = (own_after.ru_utime + own_after.ru_stime) - (own_before.ru_utime + own_before.ru_stime)
    per_event = worker_cpu / args.events * 1000
    print(f"CPU while draining: worker {worker_cpu:.1f} s ({per_event:.1f} ms per event),"
          f" this process (the stand-in) {own:.1f} s "
          f"({len(standin.requests)} Stripe calls), wall {total:.1f} s")  # fmt: skip
    measured = "measured" if args.events >= BURST else "at this rate"
    print(f"a burst of {BURST} invoice events drains in {BURST / rate:.0f} s ({measured})")
    print(f"processed: {ReceivedStripeEvent.objects.filter(status='processed').count()}"
          f"   payment failures recorded: {PaymentFailure.objects.count()}")  # fmt: skip
    print("targets: acks ≥ 400/s with p99 ≤ 50 ms; drain ≥ 80 events/s with two worker processes")


if __name__ == "__main__":
    main()
