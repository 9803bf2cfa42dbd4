"""Reporting overage credits to Stripe's `overage_credits` meter, one meter event per report.

Stripe bills only overage credits (included and granted credits are settled here). Per org, a
report carries the whole part of its unreported billable overage; the fraction stays unreported
and rides with the next report, so nothing is lost to rounding. A report is written and committed
before it is sent; a retry sends the same identifier and the same value; a report still unsent
after 23 h is not resent but reconciled against Stripe's meter event summaries. A Redis lock keeps
two reporters apart (without Redis the reporter refuses to send); row locks are the second line.
Shadow mode records reports that are never sent and never count as sent. Overage from usage
before the bill-from instant (BILLING_BILL_FROM, or the product's own) is never billed.
"""

import contextlib
import logging
import math
import threading
import time
from datetime import timedelta
from decimal import Decimal

import redis
from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q, Sum
from django.utils import timezone

from billing import stripe_api
from billing.models import AllowanceClaim, BillingAccount, ClaimStatus, StripeMeter
from billing.services.allowances import month_of
from billing.services.catalog_sync import METER_EVENT
from billing.services.payments import customer_id_for
from orgs.models import Organization, Product
from orgs.services.outbox import backoff
from usage.models import MeterReport, MeterReportStatus, UsageBucket

logger = logging.getLogger(__name__)

UNSENT_LIMIT = timedelta(hours=23)
LOCK_KEY = "billing:meter-reporter"
LOCK_TTL_SECONDS = 15 * 60
MAX_SENDS_PER_SECOND = 900  # Stripe allows 1 000 meter event calls per second in live mode
# What a live report's credits count as once written: sent, on their way, or refused for good.
COUNTED = [MeterReportStatus.PENDING, MeterReportStatus.SENT, MeterReportStatus.FAILED]
_process_lock = threading.Lock()


class ReporterBusy(Exception):
    pass


@contextlib.contextmanager
def reporter_lock(*, shadow: bool):
    """One reporter at a time: a Redis lock across processes; a process-local one in shadow mode on
    the embedded default. Sending without Redis is refused."""
    if settings.REDIS_URL is None:
        if not shadow:
            raise ReporterBusy("Redis is required to send meter events (REDIS_URL is unset).")
        if not _process_lock.acquire(blocking=False):
            raise ReporterBusy("Another reporter is running in this process.")
        try:
            yield
        finally:
            _process_lock.release()
        return
    lock = redis.Redis.from_url(settings.REDIS_URL).lock(LOCK_KEY, timeout=LOCK_TTL_SECONDS, blocking=False)
    try:
        acquired = lock.acquire()
    except redis.RedisError as error:
        raise ReporterBusy(f"Redis is unreachable: {error}") from error
    if not acquired:
        raise ReporterBusy("Another reporter holds the lock.")
    try:
        yield
    finally:
        with contextlib.suppress(redis.RedisError):
            lock.release()


def bill_from(product: Product):
    """The instant from which the product's overage is billed (its own, else the global), or None."""
    return product.bill_from or settings.BILLING_BILL_FROM


def billable_starts(*, shadow: bool) -> dict[int, object]:
    """{product id: the instant its overage counts from (None: from the start)}: each product's
    bill-from. In shadow mode a product without one counts from the start; in live mode it is left
    out (never billed) until it has one."""
    starts = {}
    for product in Product.objects.all():
        start = bill_from(product)
        if start is not None or shadow:
            starts[product.pk] = start
    return starts


def window(starts: dict[int, object], time_field: str) -> Q | None:
    """The billable window as a condition on buckets (`hour`) or events (`occurred_at`); a bucket's
    hour is on or after an hour-aligned bill-from exactly when its events' times are."""
    condition = Q()
    for product_id, start in starts.items():
        condition |= Q(product_id=product_id, **({f"{time_field}__gte": start} if start else {}))
    return condition or None


def _write_report(org_id: int, *, billable: Q, shadow: bool, now) -> MeterReport | None:
    """Write (and commit) the org's next report when it has a whole credit to report."""
    with transaction.atomic():
        # Row lock, the second line behind the reporter lock: one writer per org.
        if not BillingAccount.objects.select_for_update(skip_locked=True).filter(org_id=org_id).exists():
            return None
        statuses = [MeterReportStatus.SHADOW] if shadow else COUNTED
        mine = MeterReport.objects.filter(org_id=org_id, status__in=statuses)
        if not shadow and mine.filter(status=MeterReportStatus.PENDING).exists():
            return None  # the unsent one goes first, with its own identifier and value
        buckets = UsageBucket.objects.filter(billable, org_id=org_id)
        billable_total = buckets.aggregate(total=Sum("billable_overage"))["total"] or Decimal(0)
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
        changed = buckets.filter(billable_overage__gt=0)
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
        )


class _Pace:
    """Keeps the sends under Stripe's rate: at most MAX_SENDS_PER_SECOND."""

    def __init__(self):
        self.window, self.count = time.perf_counter(), 0

    def wait(self):
        self.count += 1
        if self.count >= MAX_SENDS_PER_SECOND:
            elapsed = time.perf_counter() - self.window
            if elapsed < 1:
                time.sleep(1 - elapsed)
            self.window, self.count = time.perf_counter(), 0


def _send(report: MeterReport, *, now) -> str:
    """Send one report; the caller holds its row lock. Returns the outcome."""
    report.attempts += 1
    try:
        stripe_api.create_meter_event(
            event_name=METER_EVENT,
            customer_id=report.customer_id,
            value=report.value,
            identifier=report.identifier,
            timestamp=int(now.timestamp()),
            attempt=report.attempts,
        )
    except stripe_api.StripeUnavailable as error:
        report.next_attempt_at = now + backoff(report.attempts)
        report.last_error = f"{error.message} {error.details}"[:2000]
        outcome = "retry"
    except stripe_api.StripeRefused as error:
        if stripe_api.is_duplicate_meter_event(error):
            outcome = _mark_sent(report, now=now, note="Stripe already had this identifier.")
        else:
            report.status, report.last_error = MeterReportStatus.FAILED, error.message[:2000]
            logger.error("Stripe refused meter report %s: %s", report.identifier, error.message)
            outcome = "failed"
    else:
        outcome = _mark_sent(report, now=now)
    report.save()
    return outcome


def _mark_sent(report: MeterReport, *, now, note: str = "") -> str:
    report.status, report.sent_at, report.stripe_timestamp = MeterReportStatus.SENT, now, now
    report.next_attempt_at, report.last_error = None, note
    return "sent"


def _reconcile(report: MeterReport, *, now) -> str:
    """A report unsent for 23 h is not resent (its identifier may be forgotten by Stripe): Stripe's
    summaries tell whether it arrived. If not, its credits are reported anew under a new identifier."""
    meter = StripeMeter.objects.get(event_name=METER_EVENT)
    sent = MeterReport.objects.filter(org_id=report.org_id, status=MeterReportStatus.SENT)
    first = (
        sent.order_by("stripe_timestamp").values_list("stripe_timestamp", flat=True).first()
        or report.created_at
    )
    start = int(first.timestamp()) // 60 * 60
    end = (int(now.timestamp()) // 60 + 1) * 60
    try:
        in_stripe = stripe_api.meter_total(
            meter_id=meter.stripe_id, customer_id=report.customer_id, start_time=start, end_time=end
        )
    except stripe_api.StripeUnavailable as error:
        report.next_attempt_at, report.last_error = now + backoff(report.attempts), error.message
        report.save()
        return "retry"
    sent_total = sent.aggregate(total=Sum("value"))["total"] or 0
    if in_stripe >= sent_total + report.value:
        outcome = _mark_sent(report, now=now, note=f"Reconciled: Stripe counts {in_stripe}.")
    elif in_stripe <= sent_total:
        report.status = MeterReportStatus.ABANDONED
        report.last_error = f"Reconciled: not in Stripe ({in_stripe} counted, {sent_total} sent before)."
        outcome = "abandoned"
    else:
        report.last_error = f"Reconciliation unclear: Stripe counts {in_stripe}, {sent_total} sent before."
        report.next_attempt_at = now + timedelta(hours=1)
        logger.error("Meter report %s: %s", report.identifier, report.last_error)
        outcome = "unclear"
    report.save()
    return outcome


def excluded_orgs(*, now) -> set[int]:
    """Orgs left out of this run: their allowance claim for the month failed (retried next run)."""
    return set(
        AllowanceClaim.objects.filter(month=month_of(now), status=ClaimStatus.FAILED).values_list(
            "org_id", flat=True
        )
    )


def report_meter_usage(*, now=None) -> dict:
    """Write the reports every org with unreported billable overage needs, then send the due ones
    (never in shadow mode). Safe to run any time, any number of times, concurrently."""
    now = now or timezone.now()
    shadow = settings.BILLING_SHADOW_MODE
    summary = {
        "shadow": shadow,
        "written": 0,
        "sent": 0,
        "retry": 0,
        "failed": 0,
        "abandoned": 0,
        "unclear": 0,
    }
    try:
        with reporter_lock(shadow=shadow):
            skipped = excluded_orgs(now=now)
            billable = window(billable_starts(shadow=shadow), "hour")
            candidates = (
                UsageBucket.objects.none() if billable is None else UsageBucket.objects.filter(billable)
            )
            candidates = candidates.filter(billable_overage__gt=0).exclude(org_id__in=skipped)
            for org_id in sorted(set(candidates.values_list("org_id", flat=True))):
                if _write_report(org_id, billable=billable, shadow=shadow, now=now) is not None:
                    summary["written"] += 1
            if not shadow:
                pace = _Pace()
                due = (
                    MeterReport.objects.filter(status=MeterReportStatus.PENDING)
                    .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
                    .exclude(org_id__in=skipped)
                    .order_by("created_at", "pk")
                    .values_list("pk", flat=True)
                )
                for pk in list(due):
                    with transaction.atomic():
                        report = (
                            MeterReport.objects.select_for_update(skip_locked=True)
                            .filter(pk=pk, status=MeterReportStatus.PENDING)
                            .first()
                        )
                        if report is None:
                            continue
                        if now - report.created_at >= UNSENT_LIMIT:
                            outcome = _reconcile(report, now=now)
                        else:
                            pace.wait()
                            outcome = _send(report, now=now)
                    summary[outcome] += 1
            summary["left_out"] = sorted(
                Organization.objects.filter(pk__in=skipped).values_list("public_id", flat=True)
            )
    except ReporterBusy as busy:
        summary["refused"] = str(busy)
    return summary
