"""The periodic jobs: one registry for `runjob` and for the Celery beat schedule."""

from dataclasses import dataclass

from celery.schedules import crontab, schedule
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class Job:
    task: str  # dotted path of the Celery task; its name on the broker too
    schedule: schedule


JOBS: dict[str, Job] = {
    "expire_invitations": Job("orgs.tasks.expire_invitations", crontab(minute=7)),
    "process_outbox": Job("orgs.tasks.process_outbox", crontab(minute="*")),
}


def run_job(name: str, *, now: str | None = None) -> dict:
    """Run one job now, in this process; returns its summary."""
    task = import_string(JOBS[name].task)
    return task(now=now)


def beat_schedule() -> dict:
    return {name: {"task": job.task, "schedule": job.schedule} for name, job in JOBS.items()}
