"""Reporting overage credits to Stripe's `overage_credits` meter, one meter event per report.

Stripe bills only overage credits (included and granted credits are settled here). Per org, a
report carries the whole part of its unreported billable overage; the fraction stays unreported
and rides with the next report, so nothing is lost to rounding. A report is written and committed
before it is sent, and so is each attempt (its real time and the timestamp it carries); a retry
sends the same identifier and the same value; a report still unsent 23 h after its first attempt
is not resent but reconciled against Stripe's meter event summaries (reconciliation.py). A Redis
lock keeps two reporters apart (without Redis the reporter refuses to send); per-org row locks and
a per-report advisory lock are the second line. Shadow mode records reports that are never sent
and never count as sent. Overage from usage before the bill-from instant (BILLING_BILL_FROM, or
the product's own) is never billed.

Two clocks, kept apart: `now` evaluates the time rules (what is due, backoff, the month whose
allowance claim must have succeeded) and may be a replayed `--now`; a meter event always carries
the real time of its send (`timezone.now()`), so late usage lands in the open invoice period.
"""

import contextlib
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Max, Q, Sum
from django.db.models.expressions import RawSQL
from django.utils import timezone

from billing import stripe_api
from billing.models import AllowanceClaim, BillingAccount, ClaimStatus
from billing.periods import month_of
from billing.services.catalog_sync import METER_EVENT
from billing.services.payments import customer_id_for
from core.instants import floor_hour
from core.retry import backoff
from orgs.models import Organization, Product
from usage.models import MeterReport, MeterReportKind, MeterReportStatus, UsageBucket, UsageEvent
from usage.services.reconciliation import reconcile_report
from usage.services.reporter_lock import HeldLock
from usage.services.reporter_lock import ReporterBusy as ReporterBusy  # the period close and the tasks
from usage.services.reporter_lock import reporter_lock as reporter_lock  # reach these through here
from usage.services.rollup import rolled_up_horizon

logger = logging.getLogger(__name__)

UNSENT_LIMIT = timedelta(hours=23)
MAX_SENDS_PER_SECOND = 900  # Stripe allows 1 000 meter event calls per second in live mode
# What a live report's credits count as once written: sent, on their way, or refused for good.
COUNTED = [MeterReportStatus.PENDING, MeterReportStatus.SENT, MeterReportStatus.FAILED]
# pg_try_advisory_lock(namespace, report id % 2**31): one sender per report (a collision only skips).
_SENDER_LOCK_NAMESPACE = 0x6F7667


def bill_from(product: Product) -> datetime | None:
    """The instant from which the product's overage is billed (its own, else the global), or None."""
    return product.bill_from or settings.BILLING_BILL_FROM


def billable_starts(*, shadow: bool) -> dict[int, datetime | None]:
    """{product id: the instant its overage counts from (None: from the start)}: each product's
    bill-from. In shadow mode a product without one counts from the start; in live mode it is left
    out (never billed) until it has one."""
    starts: dict[int, datetime | None] = {}
    for product in Product.objects.all():
        start = bill_from(product)
        if start is not None or shadow:
            starts[product.pk] = start
    return starts


def window(starts: dict[int, datetime | None], time_field: str) -> Q | None:
    """The billable window as a condition on buckets (`hour`) or events (`occurred_at`); a bucket's
    hour is on or after an hour-aligned bill-from exactly when its events' times are."""
    condition = Q()
    for product_id, start in starts.items():
        condition |= Q(product_id=product_id, **({f"{time_field}__gte": start} if start else {}))
    return condition or None


@dataclass(frozen=True)
class Stamp:
    """Attempts made before `until` carry `at` (an instant inside a closing period)."""

    at: datetime
    until: datetime


def _billable_total(org_id: int, *, starts: dict[int, datetime | None], upto: datetime | None) -> Decimal:
    """The org's billable overage rolled up so far; with `upto`, only usage before that instant:
    whole hours from the buckets, the hour `upto` falls in from the events the rollup has taken."""
    buckets = UsageBucket.objects.filter(window(starts, "hour"), org_id=org_id)
    if upto is None:
        return buckets.aggregate(total=Sum("billable_overage"))["total"] or Decimal(0)
    edge = floor_hour(upto)
    total = buckets.filter(hour__lt=edge).aggregate(total=Sum("billable_overage"))["total"] or Decimal(0)
    if edge < upto:
        events = UsageEvent.objects.filter(
            window(starts, "occurred_at"), org_id=org_id, occurred_at__gte=edge, occurred_at__lt=upto
        )
        if connection.vendor == "postgresql":  # the events the buckets hold, no others
            events = events.annotate(txid=RawSQL("ingest_txid", [])).filter(txid__lt=rolled_up_horizon())
        total += events.aggregate(total=Sum("billable_overage"))["total"] or Decimal(0)
    return total


def write_report(
    org_id: int,
    *,
    starts: dict[int, datetime | None],
    shadow: bool,
    upto: datetime | None = None,
    stamp: Stamp | None = None,
    invoice_id: str = "",
    wait: bool = False,
) -> MeterReport | None:
    """Write (and commit) the org's next report when it has a whole credit to report (of its usage
    before `upto`, if given); None when it has not, or when an unsent report must go first, or when
    another transaction holds the org's account and `wait` is off (the next run writes it)."""
    with transaction.atomic():
        # Row lock, the second line behind the reporter lock: one writer per org.
        account = BillingAccount.objects.select_for_update(skip_locked=not wait).filter(org_id=org_id)
        if not account.exists():
            return None
        statuses = [MeterReportStatus.SHADOW] if shadow else COUNTED
        # Corrections (ClosedPeriod) carry credits these reports already counted: never counted here.
        mine = MeterReport.objects.filter(org_id=org_id, status__in=statuses, kind=MeterReportKind.OVERAGE)
        if not shadow and mine.filter(status=MeterReportStatus.PENDING).exists():
            return None  # the unsent one goes first, with its own identifier and value
        billable_total = _billable_total(org_id, starts=starts, upto=upto)
        counted = mine.aggregate(total=Sum("value"))["total"] or 0
        unreported = billable_total - counted
        value = math.floor(unreported)
        if value < 1:
            return None
        org = Organization.objects.get(pk=org_id)
        customer_id = customer_id_for(org) or ""
        if not shadow and not customer_id:
            logger.error(
                "Org %s has %s billable overage credits but no Stripe customer.", org.public_id, value
            )
            return None
        last = mine.order_by("-sequence").first()
        changed = UsageBucket.objects.filter(window(starts, "hour"), org_id=org_id, billable_overage__gt=0)
        if upto is not None:
            changed = changed.filter(hour__lte=floor_hour(upto))
        if last is not None:
            changed = changed.filter(updated_at__gt=last.created_at)
        sequence = (MeterReport.objects.filter(org_id=org_id).aggregate(n=Max("sequence"))["n"] or 0) + 1
        return MeterReport.objects.create(
            org_id=org_id,
            identifier=f"{'shadow-' if shadow else ''}ovg-{org.public_id}-{sequence}",
            sequence=sequence,
            value=value,
            carried=unreported - value,
            billable_total=billable_total,
            buckets=list(changed.order_by("pk").values_list("pk", flat=True)[:1000]),
            status=MeterReportStatus.SHADOW if shadow else MeterReportStatus.PENDING,
            customer_id=customer_id,
            stamp_at=stamp.at if stamp else None,
            stamp_until=stamp.until if stamp else None,
            invoice_id=invoice_id,
        )


class _Pace:
    """Keeps the sends under Stripe's rate: at most MAX_SENDS_PER_SECOND."""

    def __init__(self) -> None:
        self.window, self.count = time.perf_counter(), 0

    def wait(self) -> None:
        self.count += 1
        if self.count >= MAX_SENDS_PER_SECOND:
            elapsed = time.perf_counter() - self.window
            if elapsed < 1:
                time.sleep(1 - elapsed)
            self.window, self.count = time.perf_counter(), 0


def stamp_for(report: MeterReport, *, sent_at: datetime) -> datetime:
    """The timestamp an attempt at `sent_at` (the real clock) carries, in whole seconds: the send's
    own time, or, for a report of a closing period while its invoice is a draft, its inside stamp."""
    stamp = sent_at
    if report.stamp_at is not None and report.stamp_until is not None and sent_at < report.stamp_until:
        stamp = min(report.stamp_at, sent_at)
    return stamp.replace(microsecond=0)


def _record_attempt(report: MeterReport, *, sent_at: datetime, stamp: datetime) -> None:
    """Commit the attempt before it is made: if its answer or the worker is lost, reconciliation
    still knows the instant Stripe may hold it at."""
    report.attempts += 1
    report.first_attempt_at = report.first_attempt_at or sent_at
    report.last_attempt_at = sent_at
    report.earliest_timestamp = min(report.earliest_timestamp or stamp, stamp)
    report.latest_timestamp = max(report.latest_timestamp or stamp, stamp)
    with transaction.atomic():
        report.save(
            update_fields=[
                "attempts",
                "first_attempt_at",
                "last_attempt_at",
                "earliest_timestamp",
                "latest_timestamp",
                "stamp_at",
                "stamp_until",
            ]
        )


def _send(report: MeterReport, *, now: datetime) -> str:
    """Send one report (the caller holds its sender lock, outside any transaction); the outcome."""
    if transaction.get_connection().in_atomic_block:
        raise RuntimeError("Meter reports are sent outside transactions: each attempt is committed first.")
    sent_at = timezone.now()  # the real clock: Stripe bills by it; `now` only evaluates the rules
    stamp = stamp_for(report, sent_at=sent_at)
    _record_attempt(report, sent_at=sent_at, stamp=stamp)
    try:
        stripe_api.create_meter_event(
            event_name=METER_EVENT,
            customer_id=report.customer_id,
            value=report.value,
            identifier=report.identifier,
            timestamp=int(stamp.timestamp()),
            attempt=report.attempts,
        )
    except stripe_api.StripeUnavailable as error:
        report.next_attempt_at = now + backoff(report.attempts)
        report.last_error = f"{error.message} {error.details}"[:2000]
        outcome = "retry"
    except stripe_api.StripeRefused as error:
        if stripe_api.is_duplicate_meter_event(error):
            # An earlier attempt arrived: Stripe holds one of the timestamps recorded above.
            outcome = _mark_sent(report, stamp=None, note="Stripe already had this identifier.")
        else:
            report.status, report.last_error = MeterReportStatus.FAILED, error.message[:2000]
            logger.error("Stripe refused meter report %s: %s", report.identifier, error.message)
            outcome = "failed"
    else:
        outcome = _mark_sent(report, stamp=stamp)
    report.save()
    return outcome


def _mark_sent(report: MeterReport, *, stamp: datetime | None, note: str = "") -> str:
    report.status, report.sent_at, report.stripe_timestamp = MeterReportStatus.SENT, timezone.now(), stamp
    report.next_attempt_at, report.last_error = None, note
    return "sent"


def _past_unsent_limit(report: MeterReport, *, now: datetime) -> bool:
    # Stripe remembers an identifier for 24 h of real time: a replayed past --now must not make an
    # old report look young (and resend an identifier Stripe may have forgotten).
    if report.first_attempt_at is None:
        return False  # never sent: nothing of it can be at Stripe
    return max(now, timezone.now()) - report.first_attempt_at >= UNSENT_LIMIT


@contextlib.contextmanager
def _sender_of(pk: int) -> Iterator[bool]:
    """Whether this process may send the report: a session-level advisory lock, held across the
    commit of the attempt and the send (a row lock would end with that commit)."""
    if connection.vendor != "postgresql":
        yield True
        return
    key = [_SENDER_LOCK_NAMESPACE, pk % 2**31]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", key)
        row = cursor.fetchone()
        assert row is not None  # a SELECT without FROM answers one row
        held: bool = row[0]
    try:
        yield held
    finally:
        if held:
            with contextlib.suppress(DatabaseError), connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", key)


def send_pending(pk: int, *, now: datetime, due_only: bool = True, stamp: Stamp | None = None) -> str | None:
    """Send one pending report, or reconcile it once 23 h have passed since its first attempt.
    `stamp` (a closing period's) applies to a report of that period not yet sent in it. None when
    another sender has it, or it is no longer pending (or, with `due_only`, not due)."""
    with _sender_of(pk) as mine:
        if not mine:
            return None
        pending = MeterReport.objects.filter(pk=pk, status=MeterReportStatus.PENDING)
        if due_only:
            pending = pending.filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        report = pending.first()
        if report is None:
            return None
        if _past_unsent_limit(report, now=now):
            return reconcile_report(report, now=now)
        if stamp is not None and report.stamp_at is None and report.created_at < stamp.at:
            report.stamp_at, report.stamp_until = stamp.at, stamp.until
        return _send(report, now=now)


def excluded_orgs(*, now: datetime) -> set[int]:
    """Orgs left out of this run: their allowance claim for the month failed (retried next run)."""
    return set(
        AllowanceClaim.objects.filter(month=month_of(now), status=ClaimStatus.FAILED).values_list(
            "org_id", flat=True
        )
    )


def _send_due(summary: dict[str, Any], *, now: datetime, skipped: set[int], held: HeldLock) -> None:
    pace = _Pace()
    due = (
        MeterReport.objects.filter(status=MeterReportStatus.PENDING)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .exclude(org_id__in=skipped)
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)
    )
    for pk in list(due):
        if held is not None:
            held.renew()
        pace.wait()
        outcome = send_pending(pk, now=now)
        if outcome is not None:
            summary[outcome] += 1


def empty_summary(*, shadow: bool) -> dict[str, Any]:
    """A run's counts: reports written, and the outcome of each send or reconciliation."""
    return {"shadow": shadow, "written": 0, "sent": 0, "retry": 0, "failed": 0, "abandoned": 0, "unclear": 0}


def report_meter_usage(*, now: datetime | None = None) -> dict[str, Any]:
    """Write the reports every org with unreported billable overage needs, then send the due ones
    (never in shadow mode). Safe to run any time, any number of times, concurrently."""
    now = now or timezone.now()
    shadow = settings.BILLING_SHADOW_MODE
    summary = empty_summary(shadow=shadow)
    try:
        with reporter_lock(shadow=shadow) as held:
            skipped = excluded_orgs(now=now)
            starts = billable_starts(shadow=shadow)
            billable = window(starts, "hour")
            candidates = (
                UsageBucket.objects.none() if billable is None else UsageBucket.objects.filter(billable)
            )
            candidates = candidates.filter(billable_overage__gt=0).exclude(org_id__in=skipped)
            for org_id in sorted(set(candidates.values_list("org_id", flat=True))):
                if write_report(org_id, starts=starts, shadow=shadow) is not None:
                    summary["written"] += 1
            if not shadow:
                _send_due(summary, now=now, skipped=skipped, held=held)
            summary["left_out"] = sorted(
                Organization.objects.filter(pk__in=skipped).values_list("public_id", flat=True)
            )
    except ReporterBusy as busy:
        summary["refused"] = str(busy)
    return summary
