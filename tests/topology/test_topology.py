"""The production topology on this machine: the Procfile's processes (web ×2, a Celery worker per
queue, beat) against the test PostgreSQL, its streaming replica and Redis, through an hour of mixed
traffic compressed into a minute (usage ingestion, entitlement checks, usage summaries, signed
Stripe webhooks, jobs). One web and one worker are killed (SIGKILL) in the middle. Nothing is lost
or counted twice: stored events = the events sent = Σ accepted; each org's balance = Σ its ledger;
buckets = events; each Stripe event processed once; meter report identifiers once."""

import itertools
import json
import re
import socket
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import urllib3
from django.db import connections, transaction
from django.db.models import Count, Sum
from django.utils import timezone
from djstripe.models import Event

from billing.models import PaymentFailure, Plan, ReceivedStripeEvent, StripeEventStatus
from billing.services.catalog_sync import sync_stripe_catalog
from billing.services.checkout import ensure_customer
from billingsite import celery_app
from billingsite.jobs import run_job
from core.replicas import REPLICA
from tests.billing.conftest import subscribe
from tests.conftest import MEMBER, set_plan
from tests.factories import OrganizationFactory
from tests.stripe_standin.fixtures import STANDIN_API_KEY, WEBHOOK_SECRET
from tests.stripe_standin.server import sign_webhook
from tests.topology.conftest import GENEROUS_LAG, on_replica, wait_for_replica
from tests.topology.processes import VENV_BIN, Topology
from usage.models import MeterReport, UsageBucket, UsageEvent

TRAFFIC_SECONDS = 60  # one hour of traffic, compressed
ORGS = 6
BATCH = 20
WEBHOOKS = 8
JOBS = [
    "usage.tasks.rollup_usage",
    "usage.tasks.report_meter_usage",
    "orgs.tasks.process_outbox",
    "orgs.tasks.deliver_events",
    "billing.tasks.expire_credit_grants",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def url_of(alias: str) -> str:
    database = connections[alias].settings_dict
    return f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"


class Client:
    """A product behind a load balancer: each request to the next web, on to the other if it is down."""

    def __init__(self, ports: list[int], key: str) -> None:
        self.ports = ports
        self.http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=2, read=30))
        self.headers = {"Authorization": f"Api-Key {key}", "Content-Type": "application/json"}
        self.turn = itertools.count()
        self.failovers = 0

    def send(self, method: str, path: str, body: object = None, headers: dict | None = None):
        """(the response, how many webs failed before it); a request no web takes is retried."""
        payload = body if isinstance(body, str) or body is None else json.dumps(body)
        first = next(self.turn)
        for attempt in range(40):
            port = self.ports[(first + attempt) % len(self.ports)]
            try:
                response = self.http.request(
                    method, f"http://127.0.0.1:{port}{path}", body=payload, headers=headers or self.headers
                )
            except urllib3.exceptions.HTTPError:
                self.failovers += 1
                time.sleep(0.05 * (attempt // len(self.ports)))
            else:
                return response, attempt
        raise AssertionError(f"no web answered {method} {path}")


class Traffic:
    def __init__(self, client: Client, orgs: list, start: float) -> None:
        self.client, self.orgs, self.start = client, orgs, start
        self.sent_ids: list[str] = []
        self.accepted = 0
        self.duplicates_on_retry = 0
        self.statuses: Counter = Counter()
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.hour_start = timezone.now() - timedelta(hours=1)

    def occurred_at(self) -> str:  # an hour of traffic in a minute
        elapsed = (time.monotonic() - self.start) * 3600 / TRAFFIC_SECONDS
        return (self.hour_start + timedelta(seconds=min(elapsed, 3599))).isoformat()

    def guarded(self, work) -> None:
        try:
            work()
        except Exception as error:  # the test fails on it, with the reason
            self.errors.append(f"{work.__name__}: {error!r}")

    def ingest(self) -> None:
        for number in itertools.count():
            if self.stop.is_set():
                return
            org = self.orgs[number % len(self.orgs)]
            events = [
                {
                    "event_id": f"topo-{number}-{n}",
                    "org_id": org.public_id,
                    "user_id": MEMBER,
                    "metric": "fix_run",
                    "quantity": "100",
                    "occurred_at": self.occurred_at(),
                }
                for n in range(BATCH)
            ]
            retried = False
            while True:  # the product retries a batch until it is acknowledged
                response, failovers = self.client.send("POST", "/api/v1/usage/events", {"events": events})
                retried = retried or failovers > 0
                if response.status == 202:
                    break
                self.statuses[f"ingest {response.status}"] += 1
                retried = True
            body = json.loads(response.data)
            self.sent_ids += [event["event_id"] for event in events]
            self.accepted += body["accepted"]
            if body["duplicates"]:
                if not retried:
                    self.errors.append(f"duplicates on a first attempt: {body}")
                self.duplicates_on_retry += body["duplicates"]
            self.statuses["ingest 202"] += 1

    def check(self) -> None:
        for number in itertools.count():
            if self.stop.is_set():
                return
            org = self.orgs[number % len(self.orgs)]
            body = {"org_id": org.public_id, "user_id": MEMBER, "metric": "fix_run", "quantity": "1"}
            response, _ = self.client.send("POST", "/api/v1/entitlements:check", body)
            self.statuses[f"check {response.status}"] += 1
            summary, _ = self.client.send("GET", f"/api/v1/orgs/{org.public_id}/usage")
            self.statuses[f"summary {summary.status}"] += 1
            time.sleep(0.05)


def setup_stripe(stripe_standin) -> list[dict]:
    sync_stripe_catalog()
    org = OrganizationFactory()
    with transaction.atomic():
        customer = ensure_customer(org)
    pro = Plan.objects.get(name="pro")
    subscription = subscribe(stripe_standin, org, pro)
    return [
        stripe_standin.event(
            "invoice.payment_failed",
            stripe_standin.add_invoice(
                customer, subscription=subscription, lines=[(pro.stripe_price_id, 4900)]
            )["id"],
        )
        for _ in range(WEBHOOKS)
    ]


def wait_until(condition, *, timeout: float, what: str, topology: Topology) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {name}\n{topology.log(name)}" for name in topology.processes)
            raise AssertionError(f"timed out waiting for {what}\n{logs}")
        time.sleep(0.5)


@pytest.mark.time_machine(datetime.now(tz=UTC), tick=True)  # the processes run on the real clock
@on_replica
def test_the_topology_loses_nothing_and_counts_nothing_twice(
    catalog, api_key, djstripe_webhook_endpoint, stripe_standin, monkeypatch, tmp_path
):
    orgs = [OrganizationFactory(owner_user_id=MEMBER) for _ in range(ORGS)]
    for org in orgs:
        set_plan(org, "pro")
    stripe_events = setup_stripe(stripe_standin)
    webhook_path = f"/stripe/webhook/{djstripe_webhook_endpoint.djstripe_uuid}/"
    monkeypatch.setitem(celery_app.conf, "task_always_eager", False)
    celery_app.control.purge()
    env = {
        "PATH": f"{VENV_BIN}:/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "billingsite.settings",
        "DATABASE_URL": url_of("default"),
        "DATABASE_REPLICA_URL": url_of(REPLICA),
        "REDIS_URL": celery_app.conf.broker_url,
        "SECRET_KEY": "tests-only-not-a-secret",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "STRIPE_API_HOST": stripe_standin.url,
        "STRIPE_TEST_SECRET_KEY": STANDIN_API_KEY,
        "WEB_CONCURRENCY": "2",
        "STRIPE_CONCURRENCY": "4",
        "EVENTS_CONCURRENCY": "2",
        "INGEST_CONCURRENCY": "1",
        "LOG_LEVEL": "WARNING",
        "DATABASE_REPLICA_MAX_LAG": str(GENEROUS_LAG),
        # An hour of traffic in a minute runs far past an API key's per-minute budget: what is
        # measured here is that nothing accepted is lost, not the rate limits (tests/api).
        "API_RATE_LIMITS": "off",
    }
    topology = Topology(env=env, logs=tmp_path)
    ports = [free_port(), free_port()]
    with connections[REPLICA].cursor() as cursor:
        cursor.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
        (replica_commits_before,) = cursor.fetchone()
    topology.boot(ports)
    try:
        topology.wait_for_web()
        traffic = drive(topology, Client(ports, api_key), orgs, stripe_events, webhook_path, stripe_standin)
        drain(topology, len(stripe_events))
    finally:
        topology.stop()
    print(  # what the minute carried (pytest -s shows it)
        f"topology: {len(traffic.sent_ids)} events, {dict(traffic.statuses)}, "
        f"{traffic.client.failovers} failovers, {traffic.duplicates_on_retry} duplicates on retries"
    )
    assert_nothing_lost_nor_doubled(traffic, orgs, len(stripe_events))
    with connections[REPLICA].cursor() as cursor:
        cursor.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
        (replica_commits_after,) = cursor.fetchone()
    assert replica_commits_after - replica_commits_before > traffic.statuses["summary 200"] // 2


def drive(topology, client, orgs, stripe_events, webhook_path, stripe_standin) -> Traffic:
    traffic = Traffic(client, orgs, time.monotonic())
    threads = [
        threading.Thread(target=traffic.guarded, args=(work,)) for work in (traffic.ingest, traffic.check)
    ]
    for thread in threads:
        thread.start()
    try:
        for second in range(TRAFFIC_SECONDS):
            if second % 3 == 0:
                for task in JOBS:
                    celery_app.send_task(task)
            if second < len(stripe_events) * 4 and second % 4 == 0:
                event = stripe_events[second // 4]
                if second // 4 == len(stripe_events) // 2:
                    # This one's processing hangs on Stripe: its worker is killed holding the claim.
                    stripe_standin.fail_next(
                        "GET", re.compile(r"^/v1/(customers|invoices)/"), status=None, delay=60
                    )
                body = json.dumps(event)
                response, _ = client.send(
                    "POST",
                    webhook_path,
                    body,
                    {"Content-Type": "application/json", **sign_webhook(body, WEBHOOK_SECRET)},
                )
                assert response.status == 200, response.data
                if second // 4 == len(stripe_events) // 2:
                    wait_until(
                        lambda: stripe_standin.requests_to("GET", re.compile(r"^/v1/(customers|invoices)/")),
                        timeout=30,
                        what="the Stripe worker to take the event",
                        topology=topology,
                    )
                    topology.kill("worker_stripe")
                    stripe_standin.clear_faults()
                    topology.restart("worker_stripe")  # the process manager brings it back
            if second == TRAFFIC_SECONDS // 2:
                topology.kill("web.1")  # its traffic fails over to web.2
            time.sleep(1)
    finally:
        traffic.stop.set()
        for thread in threads:
            thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "the traffic did not stop"
    return traffic


def drain(topology, expected: int) -> None:
    """The jobs finish what the killed worker held: the sweeper requeues its Stripe event."""
    later = (timezone.now() + timedelta(minutes=3)).isoformat()

    def all_processed() -> bool:
        celery_app.send_task("billing.tasks.sweep_stripe_events", kwargs={"now": later})
        time.sleep(1)
        statuses = ReceivedStripeEvent.objects.values_list("status", flat=True)
        return len(statuses) == expected and set(statuses) == {StripeEventStatus.PROCESSED}

    wait_until(all_processed, timeout=120, what="every Stripe event processed", topology=topology)


def assert_nothing_lost_nor_doubled(traffic: Traffic, orgs, webhooks: int) -> None:
    assert traffic.errors == []
    assert traffic.statuses["ingest 202"] > 50 and traffic.statuses["check 200"] > 50, traffic.statuses
    assert traffic.statuses["summary 200"] > 20, traffic.statuses
    assert set(traffic.statuses) <= {"ingest 202", "check 200", "summary 200"}, traffic.statuses
    assert traffic.client.failovers > 0  # web.1 was down and the traffic went on
    # Events: every one sent is stored once; Σ accepted (+ those a lost answer hid) = stored.
    stored = UsageEvent.objects.filter(org__in=orgs)
    assert stored.count() == len(traffic.sent_ids) == len(set(traffic.sent_ids))
    assert set(stored.values_list("event_id", flat=True)) == set(traffic.sent_ids)
    assert traffic.accepted + traffic.duplicates_on_retry == stored.count()
    # Balances: each org's balance row = Σ its ledger (the job that proves it finds no drift).
    assert run_job("check_ledger_consistency")["drifted"] == 0
    # Buckets: after the last rollup, each org's buckets count each event once.
    run_job("rollup_usage")
    run_job("rollup_usage")
    events = dict(stored.values("org").annotate(n=Count("event_id")).values_list("org", "n"))
    buckets = dict(
        UsageBucket.objects.filter(org__in=orgs)
        .values("org")
        .annotate(n=Sum("events"))
        .values_list("org", "n")
    )
    assert buckets == events
    # Meter reports: each identifier once; parity (reading the replica) finds no drift.
    run_job("report_meter_usage")
    identifiers = list(MeterReport.objects.values_list("identifier", flat=True))
    assert identifiers and len(identifiers) == len(set(identifiers))
    wait_for_replica()
    assert run_job("check_meter_parity")["drift"] == 0
    # Stripe: each webhook stored once and processed once, the killed worker's one included.
    assert ReceivedStripeEvent.objects.count() == Event.objects.count() == webhooks
    assert PaymentFailure.objects.count() == webhooks
    assert set(ReceivedStripeEvent.objects.values_list("attempts", flat=True)) == {1}
