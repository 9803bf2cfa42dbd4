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
from usage.models import ArchivedOverage, MeterParity, MeterReport, MeterReportStatus, UsageBucket, UsageEvent
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


def check_meter_parity(*, now: datetime | None = None) -> dict[str, Any]:
    """Record, per org with billable usage or reports, the four totals and whether they drift.

    Drift: the events the rollup has taken differ from the buckets (it lost or doubled some), or
    the reports Stripe accepted differ from Stripe's count (one was lost or doubled). Buckets ahead
    of the reports by the carried fraction, or by what the next run will report, are not drift.
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
        reported_total = _total(MeterReport.objects.filter(org_id=org_id, status__in=statuses), "value")
        sent = MeterReport.objects.filter(org_id=org_id, status=MeterReportStatus.SENT)
        sent_total = _total(sent, "value")
        first_sent = sent.filter(earliest_timestamp__isnull=False).order_by("earliest_timestamp").first()
        stripe_total = None
        if not shadow and meter is not None and first_sent is not None:
            stripe_total = _stripe_total(meter, first_sent)
        problems = []
        if events_total != buckets_total:
            problems.append("events and buckets differ")
        if stripe_total is not None and stripe_total != sent_total:
            problems.append("sent reports and Stripe differ")
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
            },
        )
        summary["orgs"] += 1
        if problems:
            summary["drift"] += 1
            summary["drifted_orgs"].append(org_id)
    return summary
