"""Closing a subscription period: its overage is billed on its own invoice.

Rollups every 5 minutes and hourly reports would bring the last hour's overage to Stripe after
the period's invoice is final: billed a period late, or never once the subscription has ended.
So when Stripe opens the period's invoice (`invoice.created`, a draft, about an hour before it
finalizes; usage/receivers.py), the org's overage up to the period end is rolled up and reported
at once, through the same writing path as every report (identifiers, written and committed before
the send, the reporter lock, shadow mode, bill-from), stamped just inside the period. Usage after
the period end stays for the next period's reports.
"""

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models.expressions import RawSQL
from django.utils import timezone

from usage.models import MeterReport, MeterReportStatus, UsageEvent
from usage.services import metering
from usage.services.rollup import rolled_up_horizon, rollup_usage

logger = logging.getLogger(__name__)

# Stripe takes meter events up to 35 days old; a period closing longer ago than that (less a
# margin for retries) can no longer be stamped inside.
STRIPE_PAST = timedelta(days=35) - timedelta(hours=1)


class PeriodNotReady(Exception):
    """Retry later: usage of the period is not rolled up yet, or the org's allowance claim failed."""


def _waiting_usage(org_id: int, *, before: datetime) -> bool:
    """Whether committed usage of the org before `before` still waits for the rollup (a long
    transaction holds its horizon back)."""
    if connection.vendor != "postgresql":
        return False  # the embedded default recomputes every bucket on each run
    waiting = UsageEvent.objects.filter(org_id=org_id, occurred_at__lt=before, billable_overage__gt=0)
    waiting = waiting.annotate(txid=RawSQL("ingest_txid", [])).filter(txid__gte=rolled_up_horizon())
    return waiting.exists()


def _send_pending(summary: dict[str, Any], org_id: int, *, now: datetime, stamp: metering.Stamp) -> bool:
    """Send the org's unsent reports first (backoff or not: the period is closing), stamped inside
    it when they are of it; whether none is left pending."""
    pending = MeterReport.objects.filter(org_id=org_id, status=MeterReportStatus.PENDING).order_by("pk")
    for pk in list(pending.values_list("pk", flat=True)):
        outcome = metering.send_pending(pk, now=now, due_only=False, stamp=stamp)
        if outcome is not None:
            summary[outcome] += 1
    return not MeterReport.objects.filter(org_id=org_id, status=MeterReportStatus.PENDING).exists()


def report_period_overage(
    *, org_id: int, invoice_id: str, period_end: datetime, draft_until: datetime, now: datetime | None = None
) -> dict[str, Any]:
    """Roll up and report the org's unreported overage before `period_end`, stamped inside the
    period while its invoice is a draft (until `draft_until`). Each step commits before the next;
    idempotent: a second call finds nothing left to report and sends nothing twice. Raises
    ReporterBusy or PeriodNotReady when it must be retried; a summary's `retry` says Stripe was
    unavailable."""
    real_now = timezone.now()
    now = now or real_now
    shadow = settings.BILLING_SHADOW_MODE
    summary = metering.empty_summary(shadow=shadow)
    if real_now - period_end > STRIPE_PAST:
        logger.error("Invoice %s closes a period that ended too long ago to stamp inside it.", invoice_id)
        return {**summary, "too_late": True}
    rollup_usage()
    if _waiting_usage(org_id, before=period_end) and real_now < draft_until:
        raise PeriodNotReady(
            f"Usage of org {org_id} before {period_end:%Y-%m-%d %H:%M} waits for the rollup."
        )
    upto = min(period_end, real_now)
    stamp = metering.Stamp(at=upto - timedelta(seconds=1), until=draft_until)
    with metering.reporter_lock(shadow=shadow):
        if org_id in metering.excluded_orgs(now=now):
            raise PeriodNotReady(f"The allowance claim of org {org_id} failed; its overage is not final.")
        if not shadow and not _send_pending(summary, org_id, now=now, stamp=stamp):
            summary["blocked"] = "an unsent report of the org must be settled first"
            return summary
        starts = metering.billable_starts(shadow=shadow)
        if metering.window(starts, "hour") is None:
            return summary
        # Waits for the org's account: unlike the hourly run, there is no next run for this period.
        report = metering.write_report(
            org_id, starts=starts, shadow=shadow, upto=upto, stamp=stamp, invoice_id=invoice_id, wait=True
        )
        if report is None:
            return summary
        summary["written"] += 1
        if not shadow:
            outcome = metering.send_pending(report.pk, now=now, due_only=False)
            if outcome is not None:
                summary[outcome] += 1
    return summary
