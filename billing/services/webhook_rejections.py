"""Rejected Stripe webhook posts, counted without flooding the audit log."""

from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from billing.models import RejectedWebhookTally
from orgs.models import AuditCategory
from orgs.services.audit import Actor, record_audit


def tally_rejected_webhook(
    *, source: str, endpoint: str, reason: str, body_start: str, now: datetime | None = None
) -> RejectedWebhookTally:
    """Count one rejected post in its (source, minute) tally; the first of a source's minute also
    writes a `security` audit entry (with the start of the body). One transaction; concurrent posts
    from one source meet on the unique (source, minute) row, so each is counted exactly once and
    only one audit entry is written. Not idempotent: each call is one more post.
    """
    minute = (now or timezone.now()).replace(second=0, microsecond=0)
    source, endpoint, reason = source[:64], endpoint[:64], reason[:100]
    key = {"source": source, "minute": minute}
    with transaction.atomic():
        if RejectedWebhookTally.objects.filter(**key).update(count=F("count") + 1, last_reason=reason):
            return RejectedWebhookTally.objects.get(**key)
        try:
            with transaction.atomic():
                tally = RejectedWebhookTally.objects.create(
                    **key, count=1, last_reason=reason, endpoint=endpoint
                )
        except IntegrityError:  # a concurrent post from the same source created it first
            RejectedWebhookTally.objects.filter(**key).update(count=F("count") + 1, last_reason=reason)
            return RejectedWebhookTally.objects.get(**key)
        record_audit(
            actor=Actor.stripe(),
            action="webhook.rejected",
            category=AuditCategory.SECURITY,
            reason=reason,
            after={"endpoint": endpoint, "ip": source, "body_start": body_start[:500]},
        )
    return tally
