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
    # Sends the event deliveries to products that are due (retries, and any whose task was lost).
    "deliver_events": Job("orgs.tasks.deliver_events", crontab(minute="*")),
    # Requeues Stripe events stored but still unprocessed two minutes after they arrived.
    "sweep_stripe_events": Job("billing.tasks.sweep_stripe_events", crontab(minute="*")),
    # Hourly: the first run of a month grants it; the rest find nothing to do (or retry failures).
    "grant_monthly_allowances": Job("billing.tasks.grant_monthly_allowances", crontab(minute=2)),
    "expire_credit_grants": Job("billing.tasks.expire_credit_grants", crontab(minute="*/15")),
    "check_ledger_consistency": Job("billing.tasks.check_ledger_consistency", crontab(minute=40, hour=3)),
    # Daily at the rule's granularity; any extra run is harmless.
    "reconcile_suspensions": Job("billing.tasks.reconcile_suspensions", crontab(minute=20, hour=6)),
    "rollup_usage": Job("usage.tasks.rollup_usage", crontab(minute="*/5")),
    # Hourly, after the rollups: each report carries the whole credits accrued since the last one.
    "report_meter_usage": Job("usage.tasks.report_meter_usage", crontab(minute=10)),
    # Hourly: closed periods whose invoice is final, checked against Stripe's meter.
    "check_closed_periods": Job("usage.tasks.check_closed_periods", crontab(minute=45)),
    "check_meter_parity": Job("usage.tasks.check_meter_parity", crontab(minute=50, hour=4)),
    # Daily: next months' event partitions made ahead (PostgreSQL; nothing on the embedded default).
    "create_usage_partitions": Job("usage.tasks.create_usage_partitions", crontab(minute=30, hour=2)),
    # Daily, after parity: months past USAGE_EVENT_RETENTION_MONTHS exported, checksummed, dropped.
    "archive_usage_partitions": Job("usage.tasks.archive_usage_partitions", crontab(minute=30, hour=5)),
}


def run_job(name: str, *, now: str | None = None) -> dict:
    """Run one job now, in this process; returns its summary."""
    task = import_string(JOBS[name].task)
    return task(now=now)


def beat_schedule() -> dict:
    return {name: {"task": job.task, "schedule": job.schedule} for name, job in JOBS.items()}
