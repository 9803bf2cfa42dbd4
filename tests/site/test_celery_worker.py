"""One job, end to end through a real Celery worker and the test Redis."""

import os
import subprocess
import sys
from datetime import timedelta
from urllib.parse import quote

from django.conf import settings
from django.db import connection
from django.utils import timezone

from billingsite import celery_app
from orgs.models import Role
from orgs.services.audit import Actor
from orgs.services.invitations import create_invitation
from tests.concurrency import committing
from tests.factories import OrganizationFactory


@committing
def test_a_worker_runs_a_job_enqueued_through_redis(monkeypatch, tmp_path):
    org = OrganizationFactory()
    invitation, _ = create_invitation(org=org, email="x@x.example", role=Role.MEMBER, actor=Actor.system("t"))
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
    }
    command = [sys.executable, "-m", "celery", "-A", "billingsite", "worker", "--pool", "solo"]
    quiet = ["--loglevel", "warning", "--without-heartbeat", "--without-gossip", "--without-mingle"]
    worker = subprocess.Popen(
        [*command, *quiet],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=(tmp_path / "worker.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    monkeypatch.setitem(celery_app.conf, "task_always_eager", False)
    try:
        result = celery_app.send_task(
            "orgs.tasks.expire_invitations",
            kwargs={"now": (timezone.now() + timedelta(days=8)).isoformat()},
            ignore_result=False,
        )
        summary = result.get(timeout=60)
    finally:
        worker.terminate()
        worker.wait(timeout=30)

    assert summary == {"expired": 1}, (tmp_path / "worker.log").read_text()
    invitation.refresh_from_db()
    assert invitation.expired_at is not None
