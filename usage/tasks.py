"""Celery tasks for usage: each takes ids or ISO instants and calls one service."""

from celery import shared_task

from core.instants import parse_instant
from core.replicas import replica_reads
from usage.services import archive, metering, parity, partitions, period_close, rollup

# A closing period's draft invoice finalizes about an hour after it opens: retry within that hour.
PERIOD_CLOSE_RETRIES = 8


@shared_task
def rollup_usage(now: str | None = None) -> dict:
    return rollup.rollup_usage(now=parse_instant(now))


@shared_task
def report_meter_usage(now: str | None = None) -> dict:
    return metering.report_meter_usage(now=parse_instant(now))


@shared_task
def check_meter_parity(now: str | None = None) -> dict:
    # Its reads may go to the streaming replica (core/replicas.py); its records go to the primary.
    with replica_reads():
        return parity.check_meter_parity(now=parse_instant(now))


@shared_task
def check_closed_periods(now: str | None = None) -> dict:
    return period_close.check_closed_periods(now=parse_instant(now))


@shared_task
def create_usage_partitions(now: str | None = None) -> dict:
    return partitions.create_usage_partitions(now=parse_instant(now))


@shared_task
def archive_usage_partitions(now: str | None = None) -> dict:
    return archive.archive_usage_partitions(now=parse_instant(now))


@shared_task(bind=True, max_retries=PERIOD_CLOSE_RETRIES)
def report_period_overage(self, *, org_id: int, invoice_id: str, period_end: str, draft_until: str) -> dict:
    """Idempotent: a retry or a second delivery reports nothing twice."""
    countdown = min(30 * 2**self.request.retries, 600)
    try:
        summary = period_close.report_period_overage(
            org_id=org_id,
            invoice_id=invoice_id,
            period_end=parse_instant(period_end),
            draft_until=parse_instant(draft_until),
        )
    except (metering.ReporterBusy, period_close.PeriodNotReady) as busy:
        raise self.retry(exc=busy, countdown=countdown) from busy
    if summary["retry"]:  # Stripe was unavailable: the written report waits, same identifier and value
        raise self.retry(countdown=countdown)
    return summary
