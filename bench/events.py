"""bench/events: signed event deliveries to a product's local receiver, through Celery workers.

Events are written with emit_event (an org event, one endpoint subscribed), N deliveries in all,
then the deliver_events job sends them to the broker and a Celery worker with two processes
(prefork, concurrency 2) delivers them: sign (Standard Webhooks), POST to a receiver running in
this process (HTTP/1.1 keep-alive, answers 200), log the attempt, mark delivered. The rate is
measured from the first to the last delivery. Baseline, same run: the same number of bare POSTs to
the same receiver from two processes (no database, no signing, no broker). Target: ≥ 300
deliveries/s with two worker processes.
"""

import argparse
import multiprocessing
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from common import ENV, PYTHON, ROOT, fresh_database, say, setup_django


class Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle and the client's
    # delayed ACK stall every keep-alive request by ~40 ms.
    disable_nagle_algorithm = True
    count = 0

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        Receiver.count += 1
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format, *args):
        pass


def bare_posts(url: str, count: int) -> None:
    import urllib3

    pool = urllib3.PoolManager()
    body = b'{"id": "ev_x", "type": "org.plan_changed", "data": {}}'
    for _ in range(count):
        pool.request("POST", url, body=body, headers={"content-type": "application/json"})


def baseline(url: str, count: int) -> float:
    started = time.perf_counter()
    processes = [multiprocessing.Process(target=bare_posts, args=(url, count // 2)) for _ in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    return count / (time.perf_counter() - started)


def emit(count: int, receiver_url: str) -> None:
    from django.db import transaction

    from orgs.models import EventType, Organization, Product
    from orgs.services import events
    from orgs.services.audit import Actor
    from orgs.services.event_endpoints import create_endpoint

    product = Product.objects.get(slug="red")
    create_endpoint(
        product=product,
        url=receiver_url,
        event_types=[EventType.ORG_PLAN_CHANGED],
        actor=Actor.system("bench"),
    )
    org_ids = list(Organization.objects.values_list("pk", flat=True))
    sent, events.deliver_soon = events.deliver_soon, lambda ids: None  # the job sends them, all at once
    try:
        for start in range(0, count, 200):
            with transaction.atomic():
                for n in range(start, min(start + 200, count)):
                    events.emit_event(
                        org_id=org_ids[n % len(org_ids)],
                        event_type=EventType.ORG_PLAN_CHANGED,
                        data={"plan": "pro", "previous_plan": "free"},
                    )
    finally:
        events.deliver_soon = sent


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--deliveries", type=int, default=6000)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hooks"

    fresh_database()
    setup_django()
    from billingsite import celery_app

    celery_app.control.purge()
    from bench_seed import seed

    seed(orgs=50)
    say(f"baseline: {args.deliveries} bare POSTs from two processes")
    bare = baseline(url, args.deliveries)
    Receiver.count = 0
    say(f"emitting {args.deliveries} events")
    emit(args.deliveries, url)

    from orgs.models import DeliveryStatus, EventDelivery
    from orgs.services.event_delivery import deliver_due_events
    from orgs.services.events import BATCH

    assert deliver_due_events(limit=args.deliveries)["sent"] == args.deliveries
    say(f"delivering with a Celery worker of {args.processes} processes")
    worker = subprocess.Popen(
        [PYTHON, "-m", "celery", "-A", "billingsite", "worker", "--pool", "prefork",
         "--concurrency", str(args.processes), "--loglevel", "warning", "--without-heartbeat",
         "--without-gossip", "--without-mingle"],
        cwd=ROOT,
        env=ENV,
    )  # fmt: skip
    first = None
    try:
        while Receiver.count < args.deliveries:
            if Receiver.count and first is None:
                first = (time.perf_counter(), Receiver.count)
            time.sleep(0.05)
        finished = time.perf_counter()
        while EventDelivery.objects.filter(status=DeliveryStatus.DELIVERED).count() < args.deliveries:
            time.sleep(0.2)  # the last answers' rows commit
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    rate = (args.deliveries - first[1]) / (finished - first[0])
    print()
    title = f"bench/events — {args.deliveries} signed deliveries to a local receiver"
    print(f"{title}, Celery {args.processes} processes (batches of {BATCH} per task)")
    ratio = rate / bare
    print(f"deliveries/s: {rate:.0f}   baseline (bare POSTs, 2 processes): {bare:.0f}/s   ratio: {ratio:.2f}")
    print(f"delivered: {EventDelivery.objects.filter(status=DeliveryStatus.DELIVERED).count()}")
    print("target: ≥ 300 deliveries/s with two worker processes")


if __name__ == "__main__":
    main()
