from django.db import models

from billing.models import MetricPrice
from orgs.models import Organization, Product


class UsageEvent(models.Model):
    """One unit of work a product reported. Its cost is computed once and stored; every total is a
    sum of stored costs."""

    # No index of its own: lookups go through (org, product, occurred_at) or the event's key.
    product = models.ForeignKey(Product, on_delete=models.PROTECT, db_index=False)
    # The product's idempotency key: unique per product through UsageEventKey (a partitioned table
    # has no unique index that leaves out its partition key).
    event_id = models.CharField(max_length=128)
    # Indexed through (org, product, occurred_at) below.
    org = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="usage_events", db_index=False
    )
    user_id = models.CharField(max_length=128, blank=True)
    metric = models.CharField(max_length=64)
    # The price version in force at occurred_at. Not indexed: price versions are never deleted, and
    # every index slows the hot insert.
    price = models.ForeignKey(MetricPrice, on_delete=models.PROTECT, db_index=False)
    quantity = models.DecimalField(max_digits=20, decimal_places=6)
    cost = models.DecimalField(max_digits=20, decimal_places=6)
    # The part of the cost no credit covered when it was debited...
    overage = models.DecimalField(max_digits=20, decimal_places=6, default=0)
    # ...and of that, what Stripe bills: overage accrued while the org's plan allowed overage.
    billable_overage = models.DecimalField(max_digits=20, decimal_places=6, default=0)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField()
    properties = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["org", "product", "occurred_at"], name="usage_event_org_time_idx"),
            # The admin's list, newest first (and its date hierarchy's probes): one index walk.
            models.Index(fields=["-occurred_at", "-id"], name="usage_event_occurred_idx"),
        ]

    def __str__(self):
        return f"{self.product_id}:{self.event_id}"

    # On PostgreSQL the table also has `ingest_txid` (bigint, DEFAULT the inserting transaction's
    # id, BRIN-indexed), maintained by the database alone: the rollup reads new events by it
    # (usage/services/rollup.py). It is not a model field, so no Python code ever writes it.
    #
    # On PostgreSQL the table is partitioned by month on occurred_at (usage/partitions.py): its
    # primary key is (id, occurred_at), `usage_usageevent_default` takes any event whose month has
    # no partition yet, and months past retention are archived and dropped (usage/services/archive.py).
    # Django sees `id` as the primary key: ids come from one sequence and stay unique.


class UsageEventKey(models.Model):
    """Every event_id a product ever stored, kept forever (an archived event's key stays): the
    duplicate check. Inserted with its event in one statement (usage/services/events.py)."""

    # Plain ids, no foreign keys: a constraint check per row would slow the hot insert, and products
    # and orgs are never deleted (PROTECT on the events).
    pk = models.CompositePrimaryKey("product_id", "event_id")
    product_id = models.BigIntegerField()
    event_id = models.CharField(max_length=128)
    # Where the event lives (it is found by (org, product, occurred_at)).
    org_id = models.BigIntegerField()
    occurred_at = models.DateTimeField()

    def __str__(self):
        return f"{self.product_id}:{self.event_id}"


class UsageBucket(models.Model):
    """Hourly totals per (org, product, metric), rolled up from events (usage/services/rollup.py)."""

    org = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="usage_buckets", db_index=False
    )
    product = models.ForeignKey(Product, on_delete=models.PROTECT, db_index=False)
    metric = models.CharField(max_length=64)
    hour = models.DateTimeField(help_text="The UTC hour [hour, hour + 1 h) the totals cover.")
    quantity = models.DecimalField(max_digits=20, decimal_places=6, default=0)
    cost = models.DecimalField(max_digits=20, decimal_places=6, default=0)
    overage = models.DecimalField(max_digits=20, decimal_places=6, default=0)
    billable_overage = models.DecimalField(max_digits=20, decimal_places=6, default=0)
    events = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-hour"]
        constraints = [
            models.UniqueConstraint(fields=["org", "product", "metric", "hour"], name="usage_bucket_unique"),
        ]

    def __str__(self):
        return f"{self.org_id} {self.product_id}:{self.metric} {self.hour:%Y-%m-%d %H}h"


ROLLUP_CURSOR = "usage_buckets"  # the one cursor of the hourly buckets


class RollupCursor(models.Model):
    """How far the rollup has read: every event of a transaction below `horizon` is in the buckets."""

    name = models.CharField(max_length=32, unique=True)
    horizon = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.name} at {self.horizon}"


class MeterReportStatus(models.TextChoices):
    PENDING = "pending"  # written, committed, not yet accepted by Stripe
    SENT = "sent"  # Stripe accepted it (or already had its identifier)
    SHADOW = "shadow"  # shadow mode: recorded, never sent, never counts as sent
    FAILED = "failed"  # Stripe refused it for good: for staff
    ABANDONED = (
        "abandoned"  # unsent after 23 h and absent from Stripe's summaries: its credits are reported anew
    )


class MeterReportKind(models.TextChoices):
    OVERAGE = "overage"  # the org's billable overage from its buckets
    CORRECTION = "correction"  # credits Stripe lacks for a closed period, reported by staff (ClosedPeriod)


class MeterReport(models.Model):
    """One meter event for the org's overage credits: written and committed before it is sent.

    `value` is the whole part of the org's unreported billable overage when it was written; the
    fraction (`carried`) stays unreported, for the next report. A retry sends the same identifier
    and the same value.
    """

    org = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="meter_reports")
    identifier = models.CharField(max_length=100, unique=True)
    sequence = models.PositiveIntegerField()
    value = models.PositiveBigIntegerField(help_text="Whole overage credits.")
    carried = models.DecimalField(
        max_digits=20, decimal_places=6, help_text="The fraction left for the next report."
    )
    billable_total = models.DecimalField(
        max_digits=20, decimal_places=6, help_text="The org's billable overage in the buckets when written."
    )
    buckets = models.JSONField(
        default=list, help_text="The buckets whose overage changed since the last report."
    )
    status = models.CharField(max_length=16, choices=MeterReportStatus.choices)
    # A correction is sent like any report but never counts against the buckets: it carries credits
    # Stripe lost, which the org's reports already counted.
    kind = models.CharField(max_length=16, choices=MeterReportKind.choices, default=MeterReportKind.OVERAGE)
    customer_id = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # The timestamp of the attempt Stripe accepted; null when Stripe already had the identifier
    # (then its event carries one of the attempts' timestamps, between the two below).
    stripe_timestamp = models.DateTimeField(null=True, blank=True)
    # Written and committed before each attempt, so that reconciliation knows every instant the
    # report could have carried, even when the worker died after the send (be careful: a report
    # searched outside the timestamps it carried was once judged absent, resent, and billed twice).
    first_attempt_at = models.DateTimeField(null=True, blank=True, help_text="Real time of the first send.")
    last_attempt_at = models.DateTimeField(null=True, blank=True, help_text="Real time of the latest send.")
    earliest_timestamp = models.DateTimeField(
        null=True, blank=True, help_text="The earliest meter event timestamp any attempt carried."
    )
    latest_timestamp = models.DateTimeField(
        null=True, blank=True, help_text="The latest meter event timestamp any attempt carried."
    )
    # A report of a closing period (its invoice is a draft): attempts before `stamp_until` carry
    # `stamp_at`, an instant just inside the period, so that Stripe bills it on that invoice.
    stamp_at = models.DateTimeField(null=True, blank=True)
    stamp_until = models.DateTimeField(null=True, blank=True)
    invoice_id = models.CharField(
        max_length=255, blank=True, help_text="The draft invoice whose period this report closes."
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["org", "sequence"], name="meter_report_org_seq_idx"),
            models.Index(
                fields=["created_at"], condition=models.Q(status="pending"), name="meter_report_pending_idx"
            ),
        ]

    def __str__(self):
        return f"{self.identifier}: {self.value} ({self.status})"


class MeterParity(models.Model):
    """One org's reconciliation: events → buckets → reports → Stripe's meter event summaries."""

    org = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="meter_parities")
    checked_at = models.DateTimeField(auto_now_add=True)
    events_total = models.DecimalField(max_digits=20, decimal_places=6)
    buckets_total = models.DecimalField(max_digits=20, decimal_places=6)
    reported_total = models.DecimalField(max_digits=20, decimal_places=6)
    stripe_total = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    drift = models.BooleanField()
    details = models.JSONField(default=dict)

    class Meta:
        ordering = ["-checked_at"]
        verbose_name = "meter parity check"

    def __str__(self):
        return (
            f"parity of {self.org_id} at {self.checked_at:%Y-%m-%d %H:%M}: {'drift' if self.drift else 'ok'}"
        )


class ClosedPeriodStatus(models.TextChoices):
    OPEN = "open"  # its invoice is a draft, or Stripe's summaries may not count every report yet
    MATCHED = "matched"  # Stripe's meter counts exactly the reports sent inside the period
    DISCREPANCY = "discrepancy"  # they differ: for staff to correct
    CORRECTED = "corrected"  # staff reported the missing credits, or credited the customer


class ClosedPeriod(models.Model):
    """One subscription period of an org, closed by its invoice: what it used and what was billed,
    and whether Stripe's meter counts the overage reported inside it (usage/services/period_close.py)."""

    org = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="closed_periods")
    invoice_id = models.CharField(max_length=255, unique=True)
    customer_id = models.CharField(max_length=255)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    draft_until = models.DateTimeField(help_text="When Stripe finalizes the invoice.")
    status = models.CharField(
        max_length=16, choices=ClosedPeriodStatus.choices, default=ClosedPeriodStatus.OPEN
    )
    plan = models.CharField(max_length=32, blank=True)
    included_credits = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    included_used = models.DecimalField(
        max_digits=20, decimal_places=6, null=True, blank=True, help_text="Credits drawn from the balance."
    )
    overage_reported = models.BigIntegerField(
        null=True, blank=True, help_text="Whole credits of the reports Stripe accepted inside the period."
    )
    stripe_counted = models.DecimalField(
        max_digits=20, decimal_places=6, null=True, blank=True, help_text="Stripe's meter, same window."
    )
    amount_invoiced_cents = models.BigIntegerField(null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    next_check_at = models.DateTimeField()
    note = models.TextField(blank=True, help_text="Why it is still open, or what the last check found.")
    corrected_at = models.DateTimeField(null=True, blank=True)
    corrected_by = models.CharField(max_length=200, blank=True)
    correction_reason = models.TextField(blank=True)
    correction_report = models.OneToOneField(
        MeterReport, on_delete=models.PROTECT, null=True, blank=True, related_name="corrects"
    )
    credited_cents = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-period_end", "-id"]
        indexes = [
            models.Index(
                fields=["next_check_at"], condition=models.Q(status="open"), name="closed_period_open_idx"
            )
        ]

    def __str__(self):
        return f"{self.period_start:%Y-%m-%d}–{self.period_end:%Y-%m-%d} ({self.invoice_id})"

    @property
    def difference(self):
        """Stripe's count less what was reported inside the period (None until checked)."""
        if self.stripe_counted is None or self.overage_reported is None:
            return None
        return self.stripe_counted - self.overage_reported


class UsageArchiveStatus(models.TextChoices):
    DETACHED = "detached"  # out of the events, not yet exported and dropped (the next run finishes it)
    ARCHIVED = "archived"  # exported with its checksum, then dropped


class UsageArchive(models.Model):
    """A month of raw usage events past retention: detached, exported to a CSV.gz file, dropped.

    Its buckets, meter reports and ledger entries are kept; the usage summary answers whole hours
    of the month from the buckets.
    """

    month = models.DateTimeField(unique=True, help_text="The first instant of the UTC month.")
    table = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=UsageArchiveStatus.choices)
    path = models.CharField(max_length=500, blank=True, help_text="The CSV.gz file, beside its .sha256.")
    sha256 = models.CharField(max_length=64, blank=True)
    rows = models.PositiveBigIntegerField(default=0)
    detached_at = models.DateTimeField()
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-month"]

    def __str__(self):
        return f"usage of {self.month:%Y-%m} ({self.status})"


class ArchivedOverage(models.Model):
    """The billable overage of an archived month's events per (org, product, hour), summed from
    the events when they were exported: the events side of the parity check for that month."""

    archive = models.ForeignKey(UsageArchive, on_delete=models.PROTECT, related_name="overages")
    org_id = models.BigIntegerField()
    product_id = models.BigIntegerField()
    hour = models.DateTimeField()
    billable_overage = models.DecimalField(max_digits=20, decimal_places=6)

    class Meta:
        indexes = [models.Index(fields=["org_id", "hour"], name="archived_overage_org_idx")]

    def __str__(self):
        return f"{self.org_id} {self.product_id} {self.hour:%Y-%m-%d %H}h"
