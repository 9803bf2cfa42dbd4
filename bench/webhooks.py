"""bench/webhooks: signed invoice.payment_failed / invoice.paid deliveries through the real endpoint.

gunicorn (2 sync workers, durable PostgreSQL) serves /stripe/webhook/<uuid>/ as in production:
dj-stripe verifies the signature, re-fetches the objects, stores them, and the project's receiver
locks the org, re-reads the invoice and decides its payment failure. Stripe is the test stand-in
(tests/stripe_standin), running in this process, which every Stripe call of the server reaches.
Each delivery is a new event for a distinct invoice (half failures, half payments) over 50 orgs.
Prints deliveries/s and p50/p99. Target: ≥ 100 deliveries/s, p99 ≤ 200 ms.
"""

import argparse
import json
import resource
import threading
import time
from datetime import UTC, datetime

import requests
from common import ENV, fresh_database, gunicorn, percentile, say, setup_django

SECRET = "whsec_bench_secret"
API_KEY = "sk_test_51BenchBenchBenchBench000000000000"


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


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--deliveries", type=int, default=1500)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    from tests.stripe_standin.server import StripeStandin, sign_webhook

    standin = StripeStandin().start()
    ENV.update(STRIPE_API_HOST=standin.url, STRIPE_TEST_SECRET_KEY=API_KEY)
    fresh_database()
    setup_django()
    from django.conf import settings

    ENV["STRIPE_API_VERSION_PIN"] = settings.STRIPE_API_VERSION
    from bench_seed import seed

    seed(orgs=50)
    from orgs.models import Organization

    say("seeding the Stripe stand-in")
    endpoint, pro, subscriptions = seed_stripe(standin, Organization.objects.filter(name__startswith="Bench"))
    say(f"building {args.deliveries} events")
    bodies = build_events(standin, pro, subscriptions, args.deliveries)
    path = f"/stripe/webhook/{endpoint.djstripe_uuid}/"

    latencies, errors, lock = [], [], threading.Lock()
    queue = list(enumerate(bodies))

    with gunicorn(workers=args.workers) as url:

        def client():
            session = requests.Session()
            while True:
                with lock:
                    if not queue:
                        return
                    _, body = queue.pop()
                headers = {"Content-Type": "application/json", **sign_webhook(body, SECRET)}
                started = time.perf_counter()
                response = session.post(url + path, data=body, headers=headers, timeout=30)
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    if response.status_code != 200:
                        errors.append(response.status_code)

        say(f"delivering with {args.clients} concurrent clients")
        cpu_before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    standin.stop()
    server_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)

    from billing.models import PaymentFailure

    print()
    print(
        f"bench/webhooks — {len(latencies)} signed deliveries, {args.clients} clients,"
        f" gunicorn {args.workers} sync workers"
    )
    print(f"deliveries/s: {len(latencies) / elapsed:.0f}")
    print(f"p50: {percentile(latencies, 50) * 1000:.0f} ms   p99: {percentile(latencies, 99) * 1000:.0f} ms")
    print(f"non-200 answers: {len(errors)}   payment failures recorded: {PaymentFailure.objects.count()}")
    print(f"Stripe calls the server made: {len(standin.requests)}")
    own = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    print(
        f"CPU seconds: gunicorn {server_cpu.ru_utime + server_cpu.ru_stime:.1f} (workers, whole run),"
        f" this process {own:.1f} (the stand-in and the clients), wall {elapsed:.1f}"
    )
    print("target: ≥ 100 deliveries/s, p99 ≤ 200 ms")


if __name__ == "__main__":
    main()
