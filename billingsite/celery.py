import os

from celery import Celery, Task
from celery.signals import task_postrun, task_prerun

from billingsite.jobs import beat_schedule

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billingsite.settings")

app = Celery("billingsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.beat_schedule = beat_schedule()
# celery-redbeat (the beat scheduler with Redis, settings.py) reads its settings unprefixed: the
# schedule and the single-beat lock in the broker's Redis; a second beat takes over within a
# minute of the first one dying.
app.conf.redbeat_redis_url = app.conf.broker_url
app.conf.redbeat_lock_timeout = 60
# Celery's Django fixup closes the database connection before and after every task unless told to
# reuse it: a new PostgreSQL connection (and its prepared statements) for every task, ~20 ms each
# on this kind of machine (bench/events: 40 deliveries/s with it). Reuse connections the way a web
# worker does instead: close one only when it is unusable or older than CONN_MAX_AGE (below).
app.conf["CELERY_DB_REUSE_MAX"] = 10**9
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def _close_old_connections(task: Task | None = None, **kwargs: object) -> None:
    # Not for a task run in process (eagerly): the connection is its caller's, maybe mid-transaction.
    if task is not None and not getattr(task.request, "is_eager", False):
        from django.db import close_old_connections

        close_old_connections()
