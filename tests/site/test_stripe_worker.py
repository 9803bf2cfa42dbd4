"""Stripe events through real Celery workers on the test Redis: a worker killed mid-processing loses
nothing, and the sweeper then has each event processed exactly once."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import timedelta
from urllib.parse import quote

from django.conf import settings
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone
from djstripe.models import Event

from billing.models import PaymentFailure, Plan, ReceivedStripeEvent, StripeEventStatus
from billing.services.catalog_sync import sync_stripe_catalog
from billing.services.checkout import ensure_customer
from billing.services.stripe_events import sweep_stripe_events
from billingsite import celery_app
from orgs.models import AuditEntry
from tests.billing.conftest import subscribe
from tests.concurrency import committing
from tests.factories import OrganizationFactory
from tests.stripe_standin.fixtures import STANDIN_API_KEY, WEBHOOK_SECRET
from tests.stripe_standin.server import sign_webhook


def start_worker(log, standin_url: str) -> subprocess.Popen:
    database = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "billingsite.settings",
        "DATABASE_URL": "postgres://{}{}@{}:{}/{}".format(
            quote(database["USER"]),
            f":{quote(database['PASSWORD'])}" if database["PASSWORD"] else "",
            database["HOST"],
            database["PORT"],
            database["NAME"],
        ),
        "REDIS_URL": settings.REDIS_URL,
        "STRIPE_API_HOST": standin_url,
        "STRIPE_TEST_SECRET_KEY": STANDIN_API_KEY,
    }
    command = [sys.executable, "-m", "celery", "-A", "billingsite", "worker", "--pool", "solo"]
    quiet = ["--loglevel", "warning", "--without-heartbeat", "--without-gossip", "--without-mingle"]
    return subprocess.Popen(
        [*command, *quiet], cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
    )


def wait_for(condition, *, timeout: float, what: str, log_path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{log_path.read_text()}"
        time.sleep(0.2)


@committing
def test_a_worker_killed_mid_processing_loses_nothing_and_each_event_is_processed_once(
    djstripe_webhook_endpoint, stripe_standin, catalog, monkeypatch, tmp_path
):
    sync_stripe_catalog()
    org = OrganizationFactory()
    with transaction.atomic():
        customer = ensure_customer(org)
    pro = Plan.objects.get(name="pro")
    subscription = subscribe(stripe_standin, org, pro)
    events = [
        stripe_standin.event(
            "invoice.payment_failed",
            stripe_standin.add_invoice(
                customer, subscription=subscription, lines=[(pro.stripe_price_id, 4900)]
            )["id"],
        )
        for _ in range(5)
    ]
    monkeypatch.setitem(celery_app.conf, "task_always_eager", False)
    celery_app.control.purge()
    # The first event's processing hangs on Stripe: the worker is killed while it holds the claim.
    stripe_standin.fail_next("GET", re.compile(r"^/v1/(customers|invoices)/"), status=None, delay=60)
    log_path = tmp_path / "worker.log"
    log = log_path.open("w")
    worker = start_worker(log, stripe_standin.url)
    try:
        path = f"/stripe/webhook/{djstripe_webhook_endpoint.djstripe_uuid}/"
        for event in events:
            body = json.dumps(event)
            headers = sign_webhook(body, WEBHOOK_SECRET)
            assert (
                Client().post(path, body, content_type="application/json", headers=headers).status_code == 200
            )
        wait_for(
            lambda: stripe_standin.requests_to("GET", re.compile(r"^/v1/(customers|invoices)/")),
            timeout=60,
            what="the worker to start processing",
            log_path=log_path,
        )
        os.kill(worker.pid, signal.SIGKILL)  # mid-processing: no chance to clean up
        worker.wait(timeout=30)
        assert not Event.objects.exists() and not PaymentFailure.objects.exists()
        assert set(ReceivedStripeEvent.objects.values_list("status", flat=True)) == {
            StripeEventStatus.PENDING
        }

        stripe_standin.clear_faults()
        worker = start_worker(log, stripe_standin.url)
        later = timezone.now() + timedelta(minutes=3)

        def all_processed() -> bool:
            # The killed worker's connection may hold its row lock a moment longer: sweep again.
            sweep_stripe_events(now=later)
            time.sleep(1)
            return not ReceivedStripeEvent.objects.exclude(status=StripeEventStatus.PROCESSED).exists()

        wait_for(all_processed, timeout=90, what="the sweeper's requeue", log_path=log_path)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        log.close()

    assert Event.objects.count() == ReceivedStripeEvent.objects.count() == 5
    assert PaymentFailure.objects.count() == 5
    assert AuditEntry.objects.filter(action="billing.payment_failed").count() == 5
    # The killed attempt was rolled back with everything it did: every event has one counted attempt.
    assert set(ReceivedStripeEvent.objects.values_list("attempts", flat=True)) == {1}
