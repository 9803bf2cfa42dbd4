"""The queues: every task is routed in one place, and a Stripe backlog never delays the rollup."""

import os
import subprocess
import sys
import time
from urllib.parse import quote

import pytest
import redis
from django.conf import settings
from django.db import connection

from billingsite import celery_app
from billingsite.jobs import JOBS
from billingsite.queues import INGEST, QUEUES, STRIPE, TASK_QUEUES
from tests.concurrency import committing

OUR_APPS = ("core.", "orgs.", "billing.", "usage.", "billingsite.")


def our_tasks() -> set[str]:
    celery_app.loader.import_default_modules()
    return {name for name in celery_app.tasks if name.startswith(OUR_APPS)}


@pytest.mark.django_db
def test_every_task_has_a_queue_and_every_route_a_task():
    tasks = our_tasks()
    assert tasks - set(TASK_QUEUES) == set(), "route these in billingsite/queues.py"
    assert set(TASK_QUEUES) - tasks == set(), "these routes name no task"
    assert set(TASK_QUEUES.values()) <= set(QUEUES)
    assert {job.task for job in JOBS.values()} <= set(TASK_QUEUES)


def test_the_router_sends_each_kind_of_work_to_its_queue():
    def queue_of(name: str) -> str:
        return celery_app.amqp.router.route({}, name)["queue"].name

    assert queue_of("billing.tasks.process_stripe_event") == "stripe"
    assert queue_of("orgs.tasks.perform_outbox_message") == "stripe"
    assert queue_of("orgs.tasks.deliver_event_batch") == "events"
    assert queue_of("usage.tasks.rollup_usage") == "ingest"
    assert queue_of("billing.tasks.grant_monthly_allowances") == "ingest"
    assert queue_of("billing.tasks.expire_credit_grants") == "ingest"
    assert queue_of("usage.tasks.report_meter_usage") == "ingest"
    assert queue_of("usage.tasks.check_meter_parity") == "maintenance"
    # An unrouted task still runs somewhere: the maintenance workers take it.
    assert queue_of("some.unrouted.task") == "maintenance"


def database_url() -> str:
    database = connection.settings_dict
    password = f":{quote(database['PASSWORD'])}" if database["PASSWORD"] else ""
    return f"postgres://{quote(database['USER'])}{password}@{database['HOST']}:{database['PORT']}/{database['NAME']}"


@committing
def test_a_stripe_backlog_does_not_delay_the_rollup(monkeypatch, tmp_path):
    monkeypatch.setitem(celery_app.conf, "task_always_eager", False)
    celery_app.control.purge()
    broker = redis.Redis.from_url(settings.REDIS_URL)
    backlog = 500
    for number in range(backlog):  # Stripe is down: its queue piles up, no Stripe worker keeps up
        celery_app.signature("billing.tasks.process_stripe_event", args=(f"evt_backlog_{number}",)).delay()
    assert broker.llen(STRIPE) == backlog
    env = {**os.environ, "DATABASE_URL": database_url(), "REDIS_URL": settings.REDIS_URL}
    command = [sys.executable, "-m", "celery", "-A", "billingsite", "worker", "--pool", "solo", "-Q", INGEST]
    quiet = ["--loglevel", "warning", "--without-heartbeat", "--without-gossip", "--without-mingle"]
    log = tmp_path / "worker.log"
    worker = subprocess.Popen(
        [*command, *quiet], cwd=settings.BASE_DIR, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT
    )
    try:
        started = time.monotonic()
        result = celery_app.signature("usage.tasks.rollup_usage").apply_async(ignore_result=False)
        summary = result.get(timeout=60)
        waited = time.monotonic() - started
        left = broker.llen(STRIPE)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        celery_app.control.purge()
    assert isinstance(summary, dict), log.read_text()
    # The rollup ran at once, the Stripe backlog untouched behind it.
    assert left == backlog
    assert waited < 30, log.read_text()


def test_a_second_beat_waits_for_the_first_ones_lock(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "PYTHONUNBUFFERED": "1",
    }
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "billingsite",
        "beat",
        "--loglevel",
        "debug",
        "--pidfile=",
    ]
    logs = [tmp_path / "beat1.log", tmp_path / "beat2.log"]
    beats = []

    def wait_for(log, text: str) -> None:
        deadline = time.monotonic() + 60
        while text not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)

    try:
        for log, awaited in zip(logs, ["Acquired lock", "Acquiring lock"], strict=True):
            beats.append(
                subprocess.Popen(
                    command, cwd=settings.BASE_DIR, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT
                )
            )
            wait_for(log, awaited)
        time.sleep(3)  # the second one keeps waiting while the first holds the lock
    finally:
        for beat in beats:
            beat.terminate()
            beat.wait(timeout=30)
    assert "Acquired lock" not in logs[1].read_text()
    assert "falling back to broker_url" not in logs[0].read_text()
