"""Stripe events in: stored once when a delivery is verified, processed once by a task, never lost.

The webhook view calls `store_stripe_event` and answers 200 at once (Stripe asks for a 2xx before
any complex logic). After the commit a task (`billing.tasks.process_stripe_event`) calls
`process_stripe_event`, which claims the event under a row lock, runs dj-stripe's sync and the
receivers (billing/receivers.py, usage/receivers.py) and marks it processed in one transaction: a
worker killed half-way rolls everything back, and the event is still pending. Transient trouble
(Stripe or the database unreachable) is retried with backoff; a permanent failure is recorded
(`failed`, with its error, and a StripeEventProblem) for staff to replay. `sweep_stripe_events`
requeues whatever is still pending two minutes after it arrived.
"""

import logging
import traceback
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import Any

import stripe
from celery import current_app
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import Subquery
from django.utils import timezone
from psycopg.types.json import Jsonb

from billing.exceptions import StripeEventNotReplayable, UnprocessableEvent
from billing.models import BillingAccount, ReceivedStripeEvent, StripeEventProblem, StripeEventStatus
from billing.stripe_api import StripeUnavailable
from core.retry import backoff
from orgs.models import AuditCategory
from orgs.services.audit import Actor, record_audit

logger = logging.getLogger(__name__)

PROCESS_TASK = "billing.tasks.process_stripe_event"
# An event still pending this long after it arrived is requeued by the sweeper.
SWEEP_AFTER = timedelta(minutes=2)
# Transient trouble is retried with backoff for as long as Stripe itself retries a delivery.
GIVE_UP_AFTER = timedelta(days=3)

# Trouble that a later attempt can get past: Stripe unreachable, busy or failing, the database
# unreachable, a deadlock or a lock timeout, a network error.
TRANSIENT = (
    StripeUnavailable,
    stripe.APIConnectionError,
    stripe.RateLimitError,
    stripe.APIError,
    OperationalError,
    InterfaceError,
    ConnectionError,
    TimeoutError,
)


def store_stripe_event(*, payload: dict[str, Any], now: datetime | None = None) -> bool:
    """Store a verified event once (its own statement, committed); returns whether it is new. A new
    event is handed to the processing task after the commit; a repeated delivery stores nothing."""
    now = now or timezone.now()
    fields = {
        "event_id": payload["id"],
        "event_type": payload["type"],
        "livemode": bool(payload.get("livemode")),
        "payload": payload,
        "received_at": now,
        "next_attempt_at": now,
    }
    if connection.vendor == "postgresql":
        # The acknowledgement's one write, in one round trip (bench/webhooks).
        with connection.cursor() as cursor:
            cursor.execute(
                _STORE,
                [payload["id"], payload["type"], fields["livemode"], Jsonb(payload), now, now],  # type: ignore[list-item]  # psycopg adapts Jsonb; django-stubs' param type omits it
            )
            created = cursor.fetchone() is not None
    else:
        try:
            with transaction.atomic():
                ReceivedStripeEvent.objects.create(**fields)
            created = True
        except IntegrityError:  # Stripe delivers an event more than once by design
            created = False
    if created:
        transaction.on_commit(lambda: process_soon(payload["id"]))
    return created


_STORE = """
INSERT INTO billing_receivedstripeevent
    (event_id, event_type, livemode, payload, received_at, next_attempt_at, status, attempts, last_error)
VALUES (%s, %s, %s, %s, %s, %s, 'pending', 0, '')
ON CONFLICT (event_id) DO NOTHING
RETURNING id
"""


def process_soon(event_id: str, *, countdown: float | None = None) -> None:
    """Send the processing task (after a commit). If the broker is down, the sweeper will."""
    try:
        # By name: the tasks module imports this one (billingsite/apps.py registers every task, so
        # where tasks run in process, the embedded default, this runs it at once).
        current_app.signature(PROCESS_TASK, args=(event_id,)).apply_async(countdown=countdown)
    except Exception:
        logger.warning("Could not enqueue Stripe event %s; the sweeper will requeue it.", event_id)


def process_stripe_event(*, event_id: str, now: datetime | None = None) -> str:
    """Process one stored event at most once, in one transaction; returns the outcome: `processed`,
    `retry` (transient trouble, next attempt after a backoff), `failed` (permanent, recorded),
    or `skipped` (already processed or failed, or another worker holds it). The backoff is kept by
    whoever sends the task (the task's own retry, the sweeper); an early attempt is harmless."""
    now = now or timezone.now()
    with transaction.atomic():
        # The claim: a row lock held until this transaction ends. SKIP LOCKED: a second task for
        # the same event (a duplicate enqueue, the sweeper, a redelivered message) leaves it to
        # the one that holds it; if that one dies, the lock goes with its connection and the
        # event is still pending for the sweeper.
        event = (
            ReceivedStripeEvent.objects.select_for_update(skip_locked=True)
            .filter(event_id=event_id, status=StripeEventStatus.PENDING)
            .first()
        )
        if event is None:
            return "skipped"
        event.attempts += 1
        try:
            with transaction.atomic():  # a savepoint: a failure undoes the processing, not the attempt
                _run(event)
        except TRANSIENT as error:
            outcome = _transient(event, error, now=now)
        except Exception as error:  # anything else will fail the same way again: kept for staff
            outcome = _failed(event, error, now=now)
        else:
            event.status, event.processed_at, event.last_error = StripeEventStatus.PROCESSED, now, ""
            outcome = "processed"
        event.save(update_fields=["status", "attempts", "next_attempt_at", "processed_at", "last_error"])
    return outcome


def _run(event: ReceivedStripeEvent) -> None:
    """dj-stripe's processing of the event (its Event row, its sync of the objects, every receiver)."""
    from djstripe.models import Event
    from djstripe.settings import djstripe_settings

    # The environment's key for the event's mode: what dj-stripe would have found through the
    # endpoint's account and its APIKey row, without the lookups.
    api_key = djstripe_settings.get_default_api_key(event.livemode)
    token = _locked_before_sync.set(_lock_account_of(event))
    try:
        stored = Event.objects.filter(id=event.event_id).first() if event.replayed_at else None
        if stored is None:
            Event.process(event.payload, api_key=api_key)
        else:
            # A replay of an event dj-stripe already stored: its handlers again (they are idempotent).
            stored.invoke_webhook_handlers()
    finally:
        _locked_before_sync.reset(token)


# The org whose billing account this processing locked before dj-stripe re-read the event's invoice.
_locked_before_sync: ContextVar[int | None] = ContextVar("locked_before_sync", default=None)


def _lock_account_of(event: ReceivedStripeEvent) -> int | None:
    """For an invoice event of a customer we know, take the org's account lock before dj-stripe
    re-reads the invoice: its copy is then read under the lock, and the receiver decides from it
    instead of reading the invoice from Stripe a second time (synced_invoice)."""
    from djstripe.models import Customer

    obj = ((event.payload or {}).get("data") or {}).get("object") or {}
    customer = obj.get("customer")
    if not event.event_type.startswith("invoice.") or not isinstance(customer, str):
        return None
    org = Customer.objects.filter(id=customer).values("subscriber_id")[:1]
    return (
        BillingAccount.objects.select_for_update()
        .filter(org_id=Subquery(org))
        .values_list("org_id", flat=True)
        .first()
    )


def synced_invoice(*, org_id: int, invoice_id: str) -> dict[str, Any] | None:
    """dj-stripe's copy of the invoice when it was read from Stripe while this transaction held the
    org's account lock (so it is the newest state any decision has seen); else None: read it again."""
    from djstripe.models import Invoice

    if _locked_before_sync.get() != org_id:
        return None
    copy: dict[str, Any] | None = (
        Invoice.objects.filter(id=invoice_id).values_list("stripe_data", flat=True).first()
    )
    return copy


def _describe(error: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(error), error)).strip()[:2000]


def _transient(event: ReceivedStripeEvent, error: BaseException, *, now: datetime) -> str:
    event.last_error = _describe(error)
    if now - event.received_at >= GIVE_UP_AFTER:
        return _failed(event, error, now=now)
    event.next_attempt_at = now + backoff(event.attempts)
    logger.warning("Stripe event %s will be retried: %s", event.event_id, event.last_error)
    return "retry"


def _failed(event: ReceivedStripeEvent, error: BaseException, *, now: datetime) -> str:
    event.status, event.last_error = StripeEventStatus.FAILED, _describe(error)
    problem = str(error) if isinstance(error, UnprocessableEvent) else event.last_error
    StripeEventProblem.objects.create(event_id=event.event_id, event_type=event.event_type, problem=problem)
    logger.error("Stripe event %s (%s) failed: %s", event.event_id, event.event_type, event.last_error)
    return "failed"


def retry_delay(event_id: str, *, now: datetime | None = None) -> float | None:
    """Seconds until a pending event's next attempt, or None when it is not pending."""
    now = now or timezone.now()
    due = (
        ReceivedStripeEvent.objects.filter(event_id=event_id, status=StripeEventStatus.PENDING)
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    return None if due is None else max((due - now).total_seconds(), 0.0)


def sweep_stripe_events(*, now: datetime | None = None, limit: int = 5000) -> dict[str, Any]:
    """Requeue every event stored more than two minutes ago and still pending once its backoff is
    over (the job `sweep_stripe_events`, every minute); safe to run at any time, concurrently."""
    now = now or timezone.now()
    due = list(
        ReceivedStripeEvent.objects.filter(
            status=StripeEventStatus.PENDING, next_attempt_at__lte=now, received_at__lte=now - SWEEP_AFTER
        )
        .order_by("next_attempt_at", "id")
        .values_list("event_id", flat=True)[:limit]
    )
    for event_id in due:
        process_soon(event_id)
    oldest = (
        ReceivedStripeEvent.objects.filter(status=StripeEventStatus.PENDING)
        .order_by("received_at")
        .values_list("received_at", flat=True)
        .first()
    )
    return {
        "requeued": len(due),
        "oldest_pending_seconds": round((now - oldest).total_seconds()) if oldest else 0,
    }


def replay_stripe_event(*, event_id: str, actor: Actor, reason: str) -> ReceivedStripeEvent:
    """Staff's Replay: a failed (or stuck) event is made pending again and processed by the same
    task, after the commit; audited. A processed event is not replayed (StripeEventNotReplayable)."""
    with transaction.atomic():
        try:
            event = ReceivedStripeEvent.objects.select_for_update(nowait=False).get(event_id=event_id)
        except ReceivedStripeEvent.DoesNotExist:
            raise StripeEventNotReplayable(f"No stored Stripe event {event_id}.") from None
        if event.status == StripeEventStatus.PROCESSED:
            raise StripeEventNotReplayable(details={"event_id": event_id, "status": event.status})
        before = {"status": event.status, "attempts": event.attempts, "last_error": event.last_error[:500]}
        now = timezone.now()
        event.status, event.next_attempt_at, event.replayed_at = StripeEventStatus.PENDING, now, now
        event.save(update_fields=["status", "next_attempt_at", "replayed_at"])
        record_audit(
            actor=actor,
            action="stripe_event.replayed",
            category=AuditCategory.BILLING,
            **_audit_subject(event),
            before=before,
            after={"status": event.status, "event_id": event_id, "event_type": event.event_type},
            reason=reason,
        )
        transaction.on_commit(lambda: process_soon(event_id))
    return event


def _audit_subject(event: ReceivedStripeEvent) -> dict[str, Any]:
    """What a replay's audit entry is about: the org of the event's customer, else its invoice or
    subscription; an event about neither (a price, a product) names only itself (`after`)."""
    from djstripe.models import Customer

    obj = ((event.payload or {}).get("data") or {}).get("object") or {}
    kind = obj.get("object")
    customer = obj.get("id") if kind == "customer" else obj.get("customer")
    org_id = None
    if isinstance(customer, str) and customer:
        org_id = Customer.objects.filter(id=customer).values_list("subscriber_id", flat=True).first()
    subscription = obj.get("id") if kind == "subscription" else obj.get("subscription")
    return {
        "org_id": org_id,
        "invoice_id": obj.get("id", "") if kind == "invoice" else "",
        "subscription_id": subscription if isinstance(subscription, str) else "",
    }
