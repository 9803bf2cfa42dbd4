"""bench/webhooks: Stripe webhooks acknowledged, then drained by Celery workers, in one run.

Acknowledgements: signed invoice.payment_failed / invoice.paid deliveries (a new event for a
distinct invoice each, over 50 orgs) posted to /stripe/webhook/<uuid>/ served by gunicorn (2 sync
workers, durable PostgreSQL) as in production, with no worker running: each answer is the
signature check and the durable store only. The client is wrk (8 connections, 2 threads, each
thread its own share of the events, signed just before): a Python client cost as much CPU as the
server on 2 cores. It runs for a time that sends each event at most once at the target rate
(every request is counted; a repeat, were the list to wrap, is a duplicate the view stores
nothing for, and is reported). Baseline, same run and client: GET /healthz (one database and one
Redis round trip). Drain: then a Celery worker with two processes (prefork,
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
import tempfile
import time
from datetime import UTC, datetime

from common import ENV, PYTHON, ROOT, fresh_database, gunicorn, require, run_wrk, say, setup_django

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


# Each wrk thread takes every `threads`-th event from its own offset, so no two send the same one.
LUA = """
local path = %(path)s
local bodies = %(bodies)s
local signatures = %(signatures)s
local threads = 0
function setup(thread)
  thread:set("offset", threads)
  threads = threads + 1
end
local n = 0
request = function()
  local i = (n * %(threads)d + offset) %% #bodies + 1
  n = n + 1
  local headers = {}
  headers["Content-Type"] = "application/json"
  if #signatures > 0 then headers["Stripe-Signature"] = signatures[i] end
  return wrk.format(#signatures > 0 and "POST" or "GET", path, headers, bodies[i])
end
"""


def lua_string(text: str) -> str:
    level = "=" * 4  # a long bracket no event's JSON closes
    assert f"]{level}]" not in text
    return f"[{level}[{text}]{level}]"


def run_lua_wrk(
    wrk: str, url: str, path: str, bodies: list[str], signatures: list[str], seconds: float
) -> dict:
    script = LUA % {
        "path": lua_string(path),
        "bodies": "{" + ",".join(map(lua_string, bodies)) + "}",
        "signatures": "{" + ",".join(map(lua_string, signatures)) + "}",
        "threads": 2,
    }
    return run_wrk(wrk, url, script, seconds)


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
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--processes", type=int, default=2, help="Celery worker processes")
    parser.add_argument(
        "--profile", type=int, metavar="N", help="instead of the drain: process N events here under cProfile"
    )
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
    wrk = require("wrk", "wrk")
    # Long enough to measure, short enough that each event is sent once at about the target rate.
    seconds = max(3, min(10, args.events // 650))

    from billing.models import ReceivedStripeEvent

    with gunicorn(workers=args.workers) as url:
        say(f"baseline: GET /healthz for {seconds} s")
        base = run_lua_wrk(wrk, url, "/healthz", [""], [], seconds)
        say(f"acknowledging deliveries for {seconds} s")
        # Signed just before sending: the signature's timestamp must be recent (300 s tolerance).
        signatures = [sign_webhook(body, SECRET)["Stripe-Signature"] for body in bodies]
        cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        acks = run_lua_wrk(wrk, url, path, [body.decode() for body in bodies], signatures, seconds)
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # gunicorn's whole life (start, baseline, acks): its workers are counted once it has exited.
    gunicorn_cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    stored = ReceivedStripeEvent.objects.count()

    if args.profile:
        return profile(args.profile, standin)
    say(f"draining with a Celery worker of {args.processes} processes")
    standin.requests.clear()
    own_before = resource.getrusage(resource.RUSAGE_SELF)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    steady, total, head = drain(stored, args.processes)
    own_after = resource.getrusage(resource.RUSAGE_SELF)
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    worker_cpu = (children_after.ru_utime + children_after.ru_stime) - (
        children_before.ru_utime + children_before.ru_stime
    )
    standin.stop()

    from billing.models import PaymentFailure

    rate = (stored - head) / steady if steady > 0 else float("nan")
    print()
    print(f"bench/webhooks — signed invoice deliveries over 50 orgs, wrk 8 connections, "
          f"gunicorn {args.workers} sync workers, Celery {args.processes} processes")  # fmt: skip
    print(f"acks/s: {acks['rps']:.0f}   p50: {acks['p50']:.1f} ms   p99: {acks['p99']:.1f} ms"
          f"   non-2xx: {acks['errors']}   sent: {acks['requests']}, stored: {stored}"
          f" ({acks['requests'] - stored} repeats)")  # fmt: skip
    print(f"baseline GET /healthz: {base['rps']:.0f}/s   p99: {base['p99']:.1f} ms"
          f"   ratio acks/baseline: {acks['rps'] / base['rps']:.2f}")  # fmt: skip
    per_ack = gunicorn_cpu / acks["requests"] * 1000
    print(f"gunicorn CPU, its whole life (start, baseline, acks): {gunicorn_cpu:.1f} s"
          f" (≤ {per_ack:.1f} ms per ack)")  # fmt: skip
    print(f"drain: {rate:.0f} events/s (first to last processed; {total:.1f} s with the worker's start)")
    own = (own_after.ru_utime + own_after.ru_stime) - (own_before.ru_utime + own_before.ru_stime)
    per_event = worker_cpu / stored * 1000
    print(f"CPU while draining: worker {worker_cpu:.1f} s ({per_event:.1f} ms per event),"
          f" this process (the stand-in) {own:.1f} s "
          f"({len(standin.requests)} Stripe calls), wall {total:.1f} s")  # fmt: skip
    measured = "measured" if stored >= BURST else "at this rate"
    print(f"a burst of {BURST} invoice events drains in {BURST / rate:.0f} s ({measured})")
    print(f"processed: {ReceivedStripeEvent.objects.filter(status='processed').count()}"
          f"   payment failures recorded: {PaymentFailure.objects.count()}")  # fmt: skip
    print("targets: acks ≥ 400/s with p99 ≤ 50 ms; drain ≥ 80 events/s with two worker processes")


def profile(count: int, standin) -> None:
    """Process `count` stored events in this process under cProfile; print where the time goes."""
    import cProfile
    import pstats

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from billing.models import ReceivedStripeEvent
    from billing.services.stripe_events import process_stripe_event

    ids = list(ReceivedStripeEvent.objects.order_by("pk").values_list("event_id", flat=True)[:count])
    process_stripe_event(event_id=ids.pop(0))  # warm-up: imports, first queries
    profiler = cProfile.Profile()
    started = time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        profiler.enable()
        for event_id in ids:
            process_stripe_event(event_id=event_id)
        profiler.disable()
    wall = time.perf_counter() - started
    standin.stop()
    print(f"\n{len(ids)} events in process: {wall / len(ids) * 1000:.1f} ms each,"
          f" {len(queries) / len(ids):.1f} queries each")  # fmt: skip
    profiler.dump_stats(path := tempfile.gettempdir() + "/bench-webhooks.prof")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
    print(f"the whole profile: {path} (python -m pstats)")


if __name__ == "__main__":
    main()
