"""Reconciling a meter report still unsent 23 h after its first attempt, against Stripe's summaries.

Resending it is not safe (Stripe may have forgotten its identifier), so Stripe's meter event
summaries must say whether it arrived. They are searched over every instant the report could have
carried (the earliest and latest timestamps its attempts recorded, before sending), widened to the
minute and to the whole span of every other report of the org's customer that reaches into it, so
that each report in the window is either wholly in or wholly out. Then, and only then:

- Stripe counts exactly the other reports Stripe accepted plus this one: it arrived (sent);
- Stripe counts exactly the others: it is absent; it is abandoned and its credits reported anew;
- anything else is unclear: kept pending for staff and checked again later, never resent. So is
  a window with a report still in flight, or an attempt too recent for Stripe's summaries, which
  are eventually consistent, to be sure to count it.
"""

import logging
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from billing import stripe_api
from billing.models import StripeMeter
from billing.services.catalog_sync import METER_EVENT
from core.retry import backoff
from usage.models import MeterReport, MeterReportStatus

logger = logging.getLogger(__name__)

# How long after an attempt Stripe's summaries are trusted to count it (they lag behind accepted
# events); a window with a younger attempt is checked again later.
SETTLE = timedelta(hours=1)
RECHECK = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


def _minute_floor(instant: datetime) -> datetime:
    return instant.replace(second=0, microsecond=0)


def _span(report: MeterReport) -> tuple[datetime, datetime]:
    """The minute-aligned [start, end) of the timestamps the report's attempts carried."""
    # Each attempt records both before it is sent: a report with an attempt has them.
    assert report.earliest_timestamp is not None and report.latest_timestamp is not None
    return _minute_floor(report.earliest_timestamp), _minute_floor(report.latest_timestamp) + MINUTE


def search_window(report: MeterReport) -> tuple[datetime, datetime, list[MeterReport]]:
    """(start, end, others): the minute-aligned [start, end) covering every timestamp the report
    and every other report of its customer reaching into the window could carry, and those others."""
    start, end = _span(report)
    while True:
        others = list(
            MeterReport.objects.filter(
                org_id=report.org_id,
                customer_id=report.customer_id,
                earliest_timestamp__lt=end,
                latest_timestamp__gte=start,
            )
            .exclude(pk=report.pk)
            .order_by("pk")
        )
        wider_start = min([start, *(_span(o)[0] for o in others)])
        wider_end = max([end, *(_span(o)[1] for o in others)])
        if (wider_start, wider_end) == (start, end):
            return start, end, others
        start, end = wider_start, wider_end


def uncertain(other: MeterReport) -> bool:
    """Whether Stripe may or may not hold this other report: still in flight, or refused after an
    attempt whose answer was lost."""
    return other.status == MeterReportStatus.PENDING or (
        other.status == MeterReportStatus.FAILED and other.attempts > 1
    )


def _unclear(report: MeterReport, *, now: datetime, why: str, alarm: bool = True) -> str:
    report.last_error = f"Reconciliation unclear: {why}"[:2000]
    report.next_attempt_at = now + RECHECK
    report.save(update_fields=["last_error", "next_attempt_at"])
    (logger.error if alarm else logger.info)("Meter report %s: %s", report.identifier, report.last_error)
    return "unclear"


def reconcile_report(report: MeterReport, *, now: datetime) -> str:
    """Decide an old unsent report from Stripe's summaries (the caller holds its sender lock):
    "sent", "abandoned", "unclear" or "retry". Never sends anything; idempotent."""
    real_now = timezone.now()
    start, end, others = search_window(report)
    if any(uncertain(other) for other in others):
        return _unclear(report, now=now, why="another report of the org is in flight in its window.")
    latest = max(r.last_attempt_at for r in [report, *others] if r.last_attempt_at is not None)
    if real_now - latest < SETTLE:
        why = f"an attempt in its window is younger than {SETTLE}; Stripe's summaries may lag."
        return _unclear(report, now=now, why=why, alarm=False)
    meter = StripeMeter.objects.get(event_name=METER_EVENT)
    try:
        counted = stripe_api.meter_total(
            meter_id=meter.stripe_id,
            customer_id=report.customer_id,
            start_time=int(start.timestamp()),
            end_time=int(end.timestamp()),
        )
    except stripe_api.StripeUnavailable as error:
        report.next_attempt_at, report.last_error = now + backoff(report.attempts), error.message
        report.save(update_fields=["next_attempt_at", "last_error"])
        return "retry"
    in_stripe = Decimal(str(counted)).normalize()
    accepted = sum(o.value for o in others if o.status == MeterReportStatus.SENT)
    span = f"{start:%Y-%m-%d %H:%M}–{end:%H:%M} UTC"
    with transaction.atomic():
        if in_stripe == accepted + report.value:
            report.status, report.sent_at, report.stripe_timestamp = MeterReportStatus.SENT, real_now, None
            report.next_attempt_at = None
            report.last_error = f"Reconciled: Stripe counts {in_stripe:f}."
            outcome = "sent"
        elif in_stripe == accepted:
            report.status = MeterReportStatus.ABANDONED
            report.last_error = f"Reconciled: not in Stripe ({in_stripe:f} counted in {span}, all others')."
            outcome = "abandoned"
        else:
            why = f"Stripe counts {in_stripe:f} in {span}; the other reports there account for {accepted}."
            return _unclear(report, now=now, why=why)
        report.save()
    return outcome
