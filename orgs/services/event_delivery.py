"""Delivering events to products: signed (Standard Webhooks), at least once, retried for three days.

Each EventDelivery row is the outbox row of one HTTP call: written with the event in the change's
transaction, sent after the commit by the task `orgs.tasks.deliver_event`, and again by the job
`deliver_events` (every minute) whenever it is due: a lost broker or a killed worker only delays
it. A 2xx is delivered; anything else (an error status, a timeout, a refused connection) is retried
with exponential backoff (30 s doubling, at most 6 hours) until three days after the event, then
given up. Every attempt is logged with its status, latency and the answer's first bytes. An
endpoint failing for three days in a row is disabled; its pending deliveries are given up.
"""

import json
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from core.public_urls import UnsafeUrl
from core.retry import backoff
from orgs.models import (
    AuditCategory,
    DeliveryAttempt,
    DeliveryStatus,
    EventDelivery,
    EventEndpoint,
    OutgoingEvent,
)
from orgs.services import event_http
from orgs.services.audit import Actor, record_audit
from orgs.services.events import deliver_soon

logger = logging.getLogger(__name__)

GIVE_UP_AFTER = timedelta(days=3)
DISABLE_AFTER = timedelta(days=3)
MAX_BACKOFF = timedelta(hours=6)


def event_body(event: OutgoingEvent) -> bytes:
    """The JSON an endpoint receives: the same bytes at every attempt."""
    payload = {
        "id": event.public_id,
        "type": event.event_type,
        "created_at": event.created_at.isoformat().replace("+00:00", "Z"),
        "org_id": event.org.public_id,
        "sequence": event.sequence,
        "data": event.data,
    }
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def signed_headers(endpoint: EventEndpoint, *, message_id: str, body: bytes, now: datetime) -> dict[str, str]:
    """Standard Webhooks headers; during a rotation both secrets sign (space-separated)."""
    secrets = [endpoint.secret]
    if (
        endpoint.previous_secret
        and endpoint.previous_secret_expires_at
        and endpoint.previous_secret_expires_at > now
    ):
        secrets.append(endpoint.previous_secret)
    return {
        "content-type": "application/json",
        "user-agent": "billing-control-plane-events/1",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": " ".join(Webhook(s).sign(message_id, now, body) for s in secrets),
    }


@dataclass(frozen=True)
class Answer:
    status_code: int | None
    latency_ms: int
    excerpt: str = ""
    error: str = ""

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _post(endpoint: EventEndpoint, body: bytes, headers: dict[str, str]) -> Answer:
    started = time.perf_counter()
    try:
        status, excerpt = event_http.post(endpoint.url, body, headers, live=settings.STRIPE_LIVE_MODE)
    except UnsafeUrl as refused:
        return Answer(None, 0, error=f"refused: {refused}"[:500])
    except Exception as error:  # a timeout, a refused connection, TLS: the endpoint's trouble
        elapsed = round((time.perf_counter() - started) * 1000)
        return Answer(None, elapsed, error=f"{type(error).__name__}: {error}"[:500])
    return Answer(status, round((time.perf_counter() - started) * 1000), excerpt=excerpt)


def deliver_event(*, delivery_id: int, now: datetime | None = None) -> str:
    """Attempt one pending delivery, at most one attempt at a time; returns `delivered`, `retry`,
    `failed` or `skipped` (not pending, or another worker holds it). Idempotent for a delivered one."""
    return next(iter(deliver_events(delivery_ids=[delivery_id], now=now)), "skipped")


DELIVERY_FIELDS = ["status", "attempts", "next_attempt_at", "last_status_code", "last_error", "delivered_at"]


def deliver_events(*, delivery_ids: Sequence[int], now: datetime | None = None) -> Counter[str]:
    """Attempt each pending delivery of `delivery_ids` once, in id order, and record them all in one
    transaction (one commit for a batch); returns the count of each outcome. Once an endpoint fails
    in a batch, the batch leaves its other deliveries for the deliver_events job (`deferred`), so
    a dead endpoint holds nothing up for long."""
    outcomes: Counter[str] = Counter()
    with transaction.atomic():
        # The claim: SKIP LOCKED leaves a delivery another worker is sending to that worker.
        claimed = list(
            EventDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("event__org", "endpoint")
            .filter(pk__in=delivery_ids, status=DeliveryStatus.PENDING)
            .order_by("id")
        )
        outcomes["skipped"] += len(set(delivery_ids)) - len(claimed)
        now = now or timezone.now()
        attempts, tried, failing = [], [], set()
        for delivery in claimed:
            if delivery.endpoint_id in failing:
                outcomes["deferred"] += 1
                continue
            attempt, outcome = _attempt(delivery, now=now)
            attempts += [attempt] if attempt else []
            tried.append(delivery)
            outcomes[outcome] += 1
            if outcome == "retry":
                failing.add(delivery.endpoint_id)
        DeliveryAttempt.objects.bulk_create(attempts)
        EventDelivery.objects.bulk_update(tried, DELIVERY_FIELDS)
    return +outcomes


def _attempt(delivery: EventDelivery, *, now: datetime) -> tuple[DeliveryAttempt | None, str]:
    endpoint = delivery.endpoint
    if endpoint.deleted_at is not None or (endpoint.disabled_at is not None and delivery.retried_at is None):
        delivery.status, delivery.last_error = DeliveryStatus.FAILED, "The endpoint is deleted or disabled."
        return None, "failed"
    body = event_body(delivery.event)
    headers = signed_headers(endpoint, message_id=delivery.event.public_id, body=body, now=now)
    answer = _post(endpoint, body, headers)
    attempt = DeliveryAttempt(
        delivery=delivery,
        attempted_at=now,
        status_code=answer.status_code,
        latency_ms=answer.latency_ms,
        response_excerpt=answer.excerpt,
        error=answer.error,
    )
    return attempt, _record(delivery, answer, now=now)


def _record(delivery: EventDelivery, answer: Answer, *, now: datetime) -> str:
    delivery.attempts += 1
    delivery.last_status_code, delivery.last_error = answer.status_code, answer.error
    endpoint = delivery.endpoint
    if answer.delivered:
        delivery.status, delivery.delivered_at = DeliveryStatus.DELIVERED, now
        outcome = "delivered"
        if endpoint.disabled_at is not None:
            enable_endpoint(endpoint, delivery=delivery)
        elif endpoint.failing_since is not None:
            EventEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=None)
    else:
        if endpoint.failing_since is None:
            EventEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(failing_since=now)
        elif now - endpoint.failing_since >= DISABLE_AFTER:
            disable_endpoint(endpoint, now=now)
        if now - delivery.created_at >= GIVE_UP_AFTER or endpoint.disabled_at is not None:
            delivery.status, outcome = DeliveryStatus.FAILED, "failed"
        else:
            delivery.next_attempt_at, outcome = now + backoff(delivery.attempts, maximum=MAX_BACKOFF), "retry"
    return outcome


def disable_endpoint(endpoint: EventEndpoint, *, now: datetime) -> None:
    """Stop sending to an endpoint that failed for three days; audited; its pending deliveries end."""
    if not EventEndpoint.objects.filter(pk=endpoint.pk, disabled_at__isnull=True).update(
        disabled_at=now, disabled_reason=f"Failing since {endpoint.failing_since:%Y-%m-%d %H:%M} UTC."
    ):
        return
    endpoint.disabled_at = now
    EventDelivery.objects.filter(endpoint=endpoint, status=DeliveryStatus.PENDING).update(
        status=DeliveryStatus.FAILED, last_error="The endpoint was disabled after failing for three days."
    )
    record_audit(
        actor=Actor.system("deliver_events"),
        action="event_endpoint.disabled",
        category=AuditCategory.PRODUCT,
        product_id=endpoint.product_id,
        after={
            "endpoint": endpoint.public_id,
            "url": endpoint.url,
            "failing_since": endpoint.failing_since.isoformat() if endpoint.failing_since else None,
        },
    )
    logger.error("Disabled event endpoint %s (%s): failing for three days.", endpoint.public_id, endpoint.url)


def enable_endpoint(endpoint: EventEndpoint, *, delivery: EventDelivery) -> None:
    """A retried delivery reached a disabled endpoint: it works again; audited."""
    EventEndpoint.objects.filter(pk=endpoint.pk).update(
        disabled_at=None, disabled_reason="", failing_since=None
    )
    record_audit(
        actor=Actor.system("deliver_events"),
        action="event_endpoint.enabled",
        category=AuditCategory.PRODUCT,
        product_id=endpoint.product_id,
        after={"endpoint": endpoint.public_id, "delivered": delivery.public_id},
    )


def deliver_due_events(*, now: datetime | None = None, limit: int = 2000) -> dict[str, Any]:
    """Send every pending delivery whose attempt is due (the job `deliver_events`, every minute);
    safe to run at any time, concurrently. Oldest sequence first."""
    now = now or timezone.now()
    due = list(
        EventDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at", "event__sequence", "id")
        .values_list("pk", flat=True)[:limit]
    )
    deliver_soon(due)
    return {"sent": len(due)}


def retry_delivery(*, delivery: EventDelivery, actor: Actor, reason: str = "") -> EventDelivery:
    """Send a delivery again now, whatever its state (a product's retry, staff's replay); audited.
    A delivered one is sent again (a replay); the endpoint must not be deleted."""
    with transaction.atomic():
        delivery = (
            EventDelivery.objects.select_for_update(of=("self",))
            .select_related("event", "endpoint")
            .get(pk=delivery.pk)
        )
        before = {"status": delivery.status, "attempts": delivery.attempts}
        now = timezone.now()
        delivery.status, delivery.next_attempt_at, delivery.retried_at = DeliveryStatus.PENDING, now, now
        # A replay may outlive the three days: count them from now.
        delivery.created_at = max(delivery.created_at, now)
        delivery.save(update_fields=["status", "next_attempt_at", "created_at", "retried_at"])
        record_audit(
            actor=actor,
            action="event_delivery.retried",
            category=AuditCategory.PRODUCT,
            org_id=delivery.event.org_id,
            product_id=delivery.endpoint.product_id,
            before=before,
            after={
                "delivery": delivery.public_id,
                "event": delivery.event.public_id,
                "status": delivery.status,
            },
            reason=reason,
        )
        transaction.on_commit(lambda: deliver_soon([delivery.pk]))
    return delivery
