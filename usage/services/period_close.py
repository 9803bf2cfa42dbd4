"""Closing a subscription period: its overage is billed on its own invoice.

Rollups every 5 minutes and hourly reports would bring the last hour's overage to Stripe after
the period's invoice is final: billed a period late, or never once the subscription has ended.
So when Stripe opens the period's invoice (`invoice.created`, a draft, about an hour before it
finalizes; usage/receivers.py), the org's overage up to the period end is rolled up and reported
at once, through the same writing path as every report (identifiers, written and committed before
the send, the reporter lock, shadow mode, bill-from), stamped just inside the period. Usage after
the period end stays for the next period's reports.

Then the period is checked (`check_closed_periods`, hourly): once its invoice is final and Stripe's
meter event summaries have settled, Stripe's count for the period must equal the reports Stripe
accepted inside it. A difference stays on the org page and in parity until staff correct it
(`correct_closed_period`, audited, with a reason): credits Stripe lacks are reported anew as a
correction report (billed on the open period's invoice); credits Stripe counted twice are credited
to the customer's Stripe balance at the period's overage price.
"""

import logging
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Max, Q, Sum
from django.db.models.expressions import RawSQL
from django.utils import timezone

from billing import stripe_api
from billing.models import BillingAccount, Plan, StripeMeter
from billing.services.catalog_sync import METER_EVENT
from billing.services.customer_balance import credit_customer
from core.errors import Conflict, InvalidRequest
from core.instants import floor_hour
from core.retry import backoff
from orgs.models import AuditCategory
from orgs.services.audit import Actor, record_audit
from usage.models import (
    ClosedPeriod,
    ClosedPeriodStatus,
    MeterReport,
    MeterReportKind,
    MeterReportStatus,
    UsageBucket,
    UsageEvent,
)
from usage.selectors import ClosingPeriod
from usage.services import metering
from usage.services.reconciliation import SETTLE, uncertain
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


# --- Checking a closed period against Stripe's meter -----------------------------------------------

MINUTE = timedelta(minutes=1)
RECHECK = timedelta(hours=1)


def record_closed_period(period: ClosingPeriod) -> ClosedPeriod:
    """The period its draft invoice closes, to be checked once the invoice is final; idempotent."""
    closed, _ = ClosedPeriod.objects.get_or_create(
        invoice_id=period.invoice_id,
        defaults={
            "org_id": period.org_id,
            "customer_id": period.customer_id,
            "period_start": period.period_start,
            "period_end": period.period_end,
            "draft_until": period.draft_until,
            "next_check_at": period.draft_until + SETTLE,
        },
    )
    return closed


def _window(period: ClosedPeriod) -> tuple[datetime, datetime]:
    """The period widened to whole minutes (Stripe's summaries take minute-aligned bounds)."""
    start = period.period_start.replace(second=0, microsecond=0)
    end = period.period_end.replace(second=0, microsecond=0)
    return start, end if end == period.period_end else end + MINUTE


def _keep_open(period: ClosedPeriod, *, now: datetime, note: str, delay: timedelta = RECHECK) -> str:
    period.note, period.next_check_at = note, now + delay
    period.save(update_fields=["note", "next_check_at"])
    return "open"


def _reports_inside(period: ClosedPeriod, start: datetime, end: datetime) -> tuple[list[MeterReport], str]:
    """The org's reports to this customer that carried a timestamp in [start, end), and why they
    cannot be counted yet ("" when they can): one on its way, one whose fate is unknown, one whose
    attempts carried timestamps on both sides of an edge, or one sent too recently for Stripe's
    summaries to be trusted to count it."""
    reports = list(
        MeterReport.objects.filter(
            org_id=period.org_id,
            customer_id=period.customer_id,
            earliest_timestamp__lt=end,
            latest_timestamp__gte=start,
        ).order_by("pk")
    )
    waiting = MeterReport.objects.filter(
        org_id=period.org_id, status=MeterReportStatus.PENDING, stamp_at__gte=start, stamp_at__lt=end
    )
    if waiting.exists() or any(uncertain(r) for r in reports):
        return reports, "a report of the period is still on its way to Stripe"
    assert all(r.earliest_timestamp and r.latest_timestamp for r in reports)  # filtered on both
    if any(r.earliest_timestamp < start or r.latest_timestamp >= end for r in reports):  # type: ignore[operator]
        return reports, "a report's attempts carried timestamps on both sides of the period's edge"
    attempts = [r.last_attempt_at for r in reports if r.last_attempt_at is not None]
    if attempts and timezone.now() - max(attempts) < SETTLE:
        return reports, f"a report was sent less than {SETTLE} ago; Stripe's summaries may lag"
    return reports, ""


def _plan_of(invoice: Any, org_id: int) -> Plan:
    """The plan the invoice bills (its lines' prices), else the org's plan now."""
    prices = {
        ((line.get("pricing") or {}).get("price_details") or {}).get("price")
        for line in stripe_api.invoice_lines(invoice)
    } - {None, ""}
    plan = Plan.objects.filter(Q(stripe_price_id__in=prices) | Q(stripe_overage_price_id__in=prices)).first()
    return plan or BillingAccount.objects.select_related("plan").get(org_id=org_id).plan


def _credits_from_balance(period: ClosedPeriod) -> Decimal:
    """Credits the org's usage drew from its balance in the period (cost less overage), by the hour."""
    totals = UsageBucket.objects.filter(
        org_id=period.org_id, hour__gte=floor_hour(period.period_start), hour__lt=period.period_end
    ).aggregate(drawn=Sum(F("cost") - F("overage")))
    return Decimal(totals["drawn"] or 0)


def check_closed_period(period_id: int, *, now: datetime) -> str:
    """Check one closed period: "matched", "discrepancy" or "open" (checked again later). Never
    writes to Stripe; idempotent."""
    period = ClosedPeriod.objects.get(pk=period_id)
    if period.status != ClosedPeriodStatus.OPEN:
        return str(period.status)
    if timezone.now() < period.draft_until:
        return _keep_open(period, now=now, note="Its invoice is still a draft.")
    start, end = _window(period)
    reports, wait = _reports_inside(period, start, end)
    if wait:
        return _keep_open(period, now=now, note=wait[0].upper() + wait[1:] + ".")
    meter = StripeMeter.objects.filter(event_name=METER_EVENT).first()
    try:
        invoice = stripe_api.retrieve_invoice(period.invoice_id)
        if invoice["status"] == "draft":
            return _keep_open(period, now=now, note="Its invoice is still a draft.")
        plan = _plan_of(invoice, period.org_id)
        counted = None
        if meter is not None and not settings.BILLING_SHADOW_MODE:
            counted = stripe_api.meter_total(
                meter_id=meter.stripe_id,
                customer_id=period.customer_id,
                start_time=int(start.timestamp()),
                end_time=int(end.timestamp()),
            )
    except stripe_api.StripeUnavailable as error:
        return _keep_open(period, now=now, note=f"Stripe unavailable: {error.message}", delay=backoff(1))
    reported = sum(r.value for r in reports if r.status == MeterReportStatus.SENT)
    period.plan, period.included_credits = plan.name, plan.monthly_credits
    period.included_used = min(_credits_from_balance(period), plan.monthly_credits)
    period.overage_reported = reported
    period.stripe_counted = None if counted is None else Decimal(str(counted))
    period.amount_invoiced_cents, period.currency = invoice["total"], invoice["currency"]
    period.checked_at = timezone.now()
    if period.stripe_counted is None:  # shadow mode, or no meter: nothing was sent to count
        period.status, period.note = (
            ClosedPeriodStatus.MATCHED,
            "Nothing is sent to Stripe's meter (shadow mode).",
        )
    elif period.stripe_counted == reported:
        period.status, period.note = ClosedPeriodStatus.MATCHED, ""
    else:
        period.status = ClosedPeriodStatus.DISCREPANCY
        period.note = (
            f"Stripe counts {period.stripe_counted.normalize():f} overage credits in "
            f"{start:%Y-%m-%d %H:%M}–{end:%Y-%m-%d %H:%M} UTC; "
            f"the reports it accepted there carry {reported}."
        )
        logger.error("Closed period %s of org %s: %s", period.invoice_id, period.org_id, period.note)
    period.save()
    return str(period.status)


def check_closed_periods(*, now: datetime | None = None, limit: int = 500) -> dict[str, int]:
    """Check the closed periods that are due. Safe any time, any number of times (each check takes
    its period's row, or leaves it to the other runner)."""
    now = now or timezone.now()
    summary = {"matched": 0, "discrepancy": 0, "open": 0}
    due = ClosedPeriod.objects.filter(status=ClosedPeriodStatus.OPEN, next_check_at__lte=now)
    for pk in list(due.order_by("next_check_at").values_list("pk", flat=True)[:limit]):
        with transaction.atomic():
            if not ClosedPeriod.objects.select_for_update(skip_locked=True).filter(pk=pk).exists():
                continue
            outcome = check_closed_period(pk, now=now)
        summary[outcome] = summary.get(outcome, 0) + 1
    return summary


def correct_closed_period(*, period_id: int, reason: str, actor: Actor) -> ClosedPeriod:
    """Settle a period's difference with Stripe, once: credits Stripe lacks are reported in a
    correction report (sent by the next reporting run, billed on the open invoice); credits it
    counted beyond the reports are credited to the customer's balance at the plan's overage price."""
    if not reason.strip():
        raise InvalidRequest("A correction needs a reason.")
    with transaction.atomic():
        period = ClosedPeriod.objects.select_for_update().select_related("org").get(pk=period_id)
        if period.status == ClosedPeriodStatus.CORRECTED:
            raise Conflict(f"The period was already corrected by {period.corrected_by}.")
        difference = period.difference
        if period.status != ClosedPeriodStatus.DISCREPANCY or difference is None:
            raise Conflict("The period has no difference with Stripe to correct.")
        before = {"status": period.status, "difference": f"{difference.normalize():f}"}
        after: dict[str, Any]
        if difference < 0:
            period.correction_report = _correction_report(period, credits=-difference)
            after = {
                "reported": period.correction_report.identifier,
                "credits": f"{-difference.normalize():f}",
            }
        else:
            period.credited_cents = _credit_for(period, credits=difference, reason=reason)
            after = {"credited_cents": period.credited_cents, "currency": period.currency}
        period.status, period.corrected_at = ClosedPeriodStatus.CORRECTED, timezone.now()
        period.corrected_by, period.correction_reason = actor.label[:200], reason
        period.save()
        record_audit(
            actor=actor,
            action="closed_period.corrected",
            category=AuditCategory.BILLING,
            org=period.org,
            invoice_id=period.invoice_id,
            before=before,
            after={"status": period.status, **after},
            reason=reason,
        )
    return period


def _correction_report(period: ClosedPeriod, *, credits: Decimal) -> MeterReport:
    if credits != credits.to_integral_value():
        raise InvalidRequest(
            f"Stripe's meter differs by {credits:f} credits, not a whole number: see Stripe."
        )
    # The org's account row, as every report writer takes it: one sequence per org.
    BillingAccount.objects.select_for_update().filter(org_id=period.org_id).exists()
    sequence = (MeterReport.objects.filter(org_id=period.org_id).aggregate(n=Max("sequence"))["n"] or 0) + 1
    return MeterReport.objects.create(
        org_id=period.org_id,
        kind=MeterReportKind.CORRECTION,
        identifier=f"cor-{period.org.public_id}-{sequence}",
        sequence=sequence,
        value=int(credits),
        carried=0,
        billable_total=0,
        status=MeterReportStatus.PENDING,
        customer_id=period.customer_id,
    )


def _credit_for(period: ClosedPeriod, *, credits: Decimal, reason: str) -> int:
    plan = Plan.objects.filter(name=period.plan).first()
    if plan is None or plan.overage_cents_per_credit is None:
        raise InvalidRequest(
            f"The plan {period.plan or '?'} has no overage price to credit the difference at."
        )
    cents = int((credits * plan.overage_cents_per_credit).to_integral_value(rounding=ROUND_HALF_UP))
    if cents > 0:
        credit_customer(
            org=period.org,
            customer_id=period.customer_id,
            cents=cents,
            currency=period.currency or plan.currency,
            description=f"Overage counted twice in {period}: {reason}"[:350],
            idempotency_key=f"closed-period:{period.pk}:credit",
        )
    return cents
