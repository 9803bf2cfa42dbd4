"""The rollup's lag: a long transaction holding its horizon back is measured, shown and alarmed,
and a long transaction in another database no longer holds it back at all."""

import contextlib
import logging
import threading
from datetime import timedelta

import psycopg
import pytest
import time_machine
from django.db import connection, connections, transaction
from django.urls import reverse
from django.utils import timezone

from tests.concurrency import committing
from tests.factories import OrganizationFactory
from usage.models import UsageBucket
from usage.selectors import rollup_lag
from usage.services.events import record_usage_events
from usage.services.rollup import rollup_usage

pytestmark = committing


@contextlib.contextmanager
def long_transaction():
    """A transaction holding an id, open on a second connection (a thread) until the block ends;
    yields its backend's pid."""
    ready, release, found = threading.Event(), threading.Event(), {}

    def hold():
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid(), pg_current_xact_id()")
                found["pid"] = cursor.fetchone()[0]
                ready.set()
                release.wait(timeout=60)
        finally:
            connections.close_all()

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert ready.wait(timeout=30)
        yield found["pid"]
    finally:
        release.set()
        thread.join()


@contextlib.contextmanager
def long_transaction_elsewhere():
    """The same, in another database of the same server (`postgres`)."""
    params = connection.settings_dict
    with psycopg.connect(
        host=params["HOST"] or None,
        port=params["PORT"] or None,
        user=params["USER"] or None,
        password=params["PASSWORD"] or None,
        dbname="postgres",
    ) as other:
        other.execute("SELECT pg_current_xact_id()")  # an id, as a writer has
        yield
        other.rollback()


@pytest.fixture
def ingest(catalog):
    from orgs.models import Product

    red, org = Product.objects.get(slug="red"), OrganizationFactory()

    def ingest(name: str):
        record_usage_events(
            product=red,
            events=[
                {
                    "event_id": name,
                    "org_id": org.public_id,
                    "metric": "fix_run",
                    "quantity": "1",
                    "occurred_at": timezone.now().isoformat(),
                }
            ],
        )

    ingest.org = org
    return ingest


def test_a_long_transaction_holding_the_rollup_back_is_measured_shown_and_alarmed(ingest, client, caplog):
    ingest("before")
    rollup_usage()
    with long_transaction() as pid:
        ingest("waiting")  # committed, but younger than the open transaction
        rollup_usage()
        assert UsageBucket.objects.get().events == 1

        with time_machine.travel(timezone.now() + timedelta(minutes=20), tick=False):
            lag = rollup_lag()
            health = client.get("/healthz")
            with caplog.at_level(logging.ERROR, logger="usage.services.rollup"):
                assert rollup_usage()["lag_seconds"] == 20 * 60

    assert (lag.lagging, lag.lag, lag.holder.pid, lag.holder.state) == (
        True,
        timedelta(minutes=20),
        pid,
        "idle in transaction",
    )
    assert health.status_code == 200  # a lag is a detail, not an outage
    body = health.json()
    assert (body["database"], body["redis"], body["rollup"]["status"]) == ("ok", "ok", "lagging")
    assert (body["rollup"]["lag_seconds"], body["rollup"]["held_by"]["pid"]) == (1200, pid)
    assert f"held back by the transaction of pid {pid}" in caplog.text and "20 min behind" in caplog.text

    rollup_usage()  # the transaction has ended
    assert UsageBucket.objects.get().events == 2
    assert not rollup_lag().lagging and rollup_lag().lag == timedelta(0)
    assert client.get("/healthz").json()["rollup"] == {
        "status": "ok",
        "lag_seconds": 0,
        "oldest_waiting_event_at": None,
        "held_by": None,
    }


def test_staff_see_a_warning_on_the_usage_pages_while_the_rollup_lags(ingest, support):
    with long_transaction() as pid:
        ingest("waiting")
        rollup_usage()
        pages = [
            reverse("admin:usage_usageevent_changelist"),
            reverse("admin:usage_usagebucket_changelist"),
            reverse("admin:orgs_organization_change", args=[ingest.org.pk]),
        ]
        with time_machine.travel(timezone.now() + timedelta(minutes=16), tick=False):
            lagging = [support.get(page).content.decode() for page in pages]
        on_time = support.get(pages[0]).content.decode()  # 0 minutes: below the limit

    for html in lagging:
        assert "Usage rollup is 16 min behind" in html and f"pid {pid}" in html
    assert "Usage rollup is" not in on_time


def test_a_long_transaction_in_another_database_does_not_hold_the_rollup_back(ingest):
    with long_transaction_elsewhere():
        ingest("a")

        rollup_usage()

        assert UsageBucket.objects.get().events == 1
        assert rollup_lag().lag == timedelta(0)
