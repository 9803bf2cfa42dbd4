"""The parity check: events → buckets → reports → Stripe's meter event summaries, per org."""

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Q, QuerySet, Sum
from django.db.models.expressions import RawSQL
from django.utils import timezone

from billing import stripe_api
from billing.models import StripeMeter
from billing.services.catalog_sync import METER_EVENT
from usage.models import (
    ArchivedOverage,
    ClosedPeriod,
    ClosedPeriodStatus,
    MeterParity,
    MeterReport,
    MeterReportKind,
    MeterReportStatus,
    UsageBucket,
    UsageEvent,
)
from usage.services.metering import COUNTED, billable_starts, window
from usage.services.rollup import rolled_up_horizon

ZERO = Decimal(0)


def _total(queryset: QuerySet[Any], column: str) -> Decimal:
    return Decimal(queryset.aggregate(total=Sum(column))["total"] or 0)


def _stripe_total(meter: StripeMeter, first_sent: MeterReport) -> Decimal:
    # From the earliest timestamp a sent report may carry, to the real time (meter events carry
    # the real time of their send, whatever --now replays).
    assert first_sent.earliest_timestamp is not None  # the first of the sent reports that have one
    start = int(first_sent.earliest_timestamp.timestamp()) // 60 * 60
    end = (int(timezone.now().timestamp()) // 60 + 1) * 60
    total = stripe_api.meter_total(
        meter_id=meter.stripe_id, customer_id=first_sent.customer_id, start_time=start, end_time=end
    )
    return Decimal(str(total))


def _closed_period_differences(org_id: int) -> tuple[Decimal, list[str]]:
    """The differences of the org's corrected periods, which stay in Stripe's count (the corrections
    settle them), and a problem for each period that differs and is not corrected yet."""
    periods = ClosedPeriod.objects.filter(
        org_id=org_id, status__in=[ClosedPeriodStatus.CORRECTED, ClosedPeriodStatus.DISCREPANCY]
    ).select_related("correction_report")
    settled, differing = ZERO, []
    for period in periods:
        difference = period.difference or ZERO
        if period.status == ClosedPeriodStatus.DISCREPANCY:
            differing.append(f"closed period {period} differs from Stripe by {difference.normalize():f}")
            continue
        settled += difference
        report = period.correction_report
        if report is not None and report.status in (MeterReportStatus.ABANDONED, MeterReportStatus.FAILED):
            # Stripe never took the correction: the credits it was to bill are still missing.
            differing.append(
                f"the correction {report.identifier} of closed period {period} was {report.status}"
            )
    return settled, differing


def _stripe_side(
    org_id: int, *, meter: StripeMeter | None
) -> tuple[Decimal | None, Decimal, Decimal, list[str]]:
    """(Stripe's count, the sent reports' total, the corrected periods' differences, the problems):
    Stripe's count must be the sent reports (corrections too) plus those differences; a closed
    period that differs and is not corrected is a problem of its own. No meter (or shadow mode):
    Stripe is not asked."""
    sent = MeterReport.objects.filter(org_id=org_id, status=MeterReportStatus.SENT)
    sent_total = _total(sent, "value")
    settled, problems = _closed_period_differences(org_id)
    first_sent = sent.filter(earliest_timestamp__isnull=False).order_by("earliest_timestamp").first()
    stripe_total = None
    if meter is not None and first_sent is not None:
        stripe_total = _stripe_total(meter, first_sent)
        if stripe_total != sent_total + settled:
            problems.insert(0, "sent reports and Stripe differ")
    return stripe_total, sent_total, settled, problems


def check_meter_parity(*, now: datetime | None = None) -> dict[str, Any]:
    """Record, per org with billable usage or reports, the four totals and whether they drift.

    Drift: the events the rollup has taken differ from the buckets (it lost or doubled some), or
    the reports Stripe accepted differ from Stripe's count (one was lost or doubled; a corrected
    closed period's difference is part of Stripe's count), or a closed period differs from Stripe
    and is not corrected yet. Buckets ahead of the reports by the carried fraction, or by what the
    next run will report, are not drift.
    """
    now = now or timezone.now()
    shadow = settings.BILLING_SHADOW_MODE
    starts = billable_starts(shadow=shadow)
    bucket_window, event_window = window(starts, "hour"), window(starts, "occurred_at")
    meter = StripeMeter.objects.filter(event_name=METER_EVENT).first()
    org_ids = set(MeterReport.objects.values_list("org_id", flat=True))
    if bucket_window is not None:
        org_ids |= set(
            UsageBucket.objects.filter(bucket_window, billable_overage__gt=0).values_list("org_id", flat=True)
        )
    events = UsageEvent.objects.all()
    if connection.vendor == "postgresql":  # only what the rollup has taken: later events are not drift
        events = events.annotate(txid=RawSQL("ingest_txid", [])).filter(txid__lt=rolled_up_horizon())
    summary: dict[str, Any] = {"orgs": 0, "drift": 0, "drifted_orgs": []}
    for org_id in sorted(org_ids):
        in_window = bucket_window if bucket_window is not None else Q(pk__in=[])
        buckets_total = _total(UsageBucket.objects.filter(in_window, org_id=org_id), "billable_overage")
        in_event_window = event_window if event_window is not None else Q(pk__in=[])
        events_total = _total(events.filter(in_event_window, org_id=org_id), "billable_overage")
        # Months whose raw events are archived: their overage as summed from the events at export.
        events_total += _total(ArchivedOverage.objects.filter(in_window, org_id=org_id), "billable_overage")
        statuses = [MeterReportStatus.SHADOW] if shadow else COUNTED
        reports = MeterReport.objects.filter(org_id=org_id, status__in=statuses, kind=MeterReportKind.OVERAGE)
        reported_total = _total(reports, "value")
        stripe_total, sent_total, settled, stripe_problems = _stripe_side(
            org_id, meter=None if shadow else meter
        )
        problems = ["events and buckets differ"] if events_total != buckets_total else []
        problems += stripe_problems
        MeterParity.objects.create(
            org_id=org_id,
            events_total=events_total,
            buckets_total=buckets_total,
            reported_total=reported_total,
            stripe_total=stripe_total,
            drift=bool(problems),
            details={
                "problems": problems,
                "sent_total": str(sent_total),
                "unreported": str(buckets_total - reported_total),
                "corrected_differences": str(settled),
            },
        )
        summary["orgs"] += 1
        if problems:
            summary["drift"] += 1
            summary["drifted_orgs"].append(org_id)
    return summary
