"""The transactional outbox: side effects outside the database, performed after commit.

A service calls `enqueue_outbox` inside the transaction that decides the effect. After commit a
task performs it at once (the fast path); the `process_outbox` job performs whatever is still due
(the safe path: a lost broker or a killed worker only delays a message). Handlers are registered
per kind with `@outbox_handler` and must be idempotent: a crash after the effect but before the
commit that records it performs it again (Stripe idempotency keys make that harmless).
"""

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from celery import current_app
from django.db import transaction
from django.utils import timezone

from core.retry import backoff
from orgs.models import Organization, OutboxMessage

logger = logging.getLogger(__name__)

PERFORM_TASK = "orgs.tasks.perform_outbox_message"

# A handler performs one message; what it returns is kept on the row as its result.
OutboxHandler = Callable[[OutboxMessage], dict[str, Any] | None]
_H = TypeVar("_H", bound=OutboxHandler)

_handlers: dict[str, OutboxHandler] = {}


class PermanentOutboxError(Exception):
    """Raised by a handler when retrying can never succeed (for example a 400 from Stripe)."""


def outbox_handler(kind: str) -> Callable[[_H], _H]:
    def register(function: _H) -> _H:
        if kind in _handlers:
            raise RuntimeError(f"Outbox kind {kind!r} already has a handler.")
        _handlers[kind] = function
        return function

    return register


def enqueue_outbox(
    *, kind: str, payload: dict[str, Any], idempotency_key: str, org: Organization | None = None
) -> tuple[OutboxMessage, bool]:
    """Write an outbox row in the caller's transaction; idempotent on `idempotency_key`."""
    if kind not in _handlers:
        raise ValueError(f"No outbox handler for {kind!r}.")
    message, created = OutboxMessage.objects.get_or_create(
        idempotency_key=idempotency_key,
        defaults={"kind": kind, "payload": payload, "org": org, "available_at": timezone.now()},
    )
    if created:
        transaction.on_commit(lambda: _perform_soon(message.pk))
    return message, created


def _perform_soon(message_id: int) -> None:
    try:
        # By name: the task module imports this one, never the reverse (billingsite/apps.py makes
        # sure every task is registered, so where tasks run in process this runs at once).
        current_app.signature(PERFORM_TASK, args=(message_id,)).delay()
    except Exception:
        # The broker is down: the process_outbox job will perform it.
        logger.warning("Could not enqueue outbox message %s; the job will pick it up.", message_id)


def perform_outbox_message(*, message_id: int, now: datetime | None = None) -> str:
    """Perform one due message at most once at a time; returns its outcome."""
    now = now or timezone.now()
    with transaction.atomic():
        # SKIP LOCKED: another worker performing this message is not waited for.
        message = (
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(pk=message_id, performed_at__isnull=True, failed_at__isnull=True)
            .first()
        )
        if message is None:
            return "skipped"
        if message.available_at > now:
            return "not_due"
        message.attempts += 1
        try:
            # A savepoint, so a handler's database error still lets us record the attempt.
            with transaction.atomic():
                message.result = _handlers[message.kind](message)
        except PermanentOutboxError as error:
            message.failed_at = now
            message.last_error = str(error)[:2000]
            outcome = "failed"
            logger.error("Outbox message %s failed permanently: %s", message.pk, error)
        except Exception as error:
            message.available_at = now + backoff(message.attempts)
            message.last_error = f"{type(error).__name__}: {error}"[:2000]
            outcome = "retry"
            logger.warning("Outbox message %s will be retried: %s", message.pk, error)
        else:
            message.performed_at = now
            message.last_error = ""
            outcome = "performed"
        message.save()
        return outcome


def process_outbox(*, now: datetime | None = None, limit: int = 500) -> dict[str, int]:
    """Perform every due outbox message (the job `process_outbox`); safe to run concurrently."""
    now = now or timezone.now()
    due = list(
        OutboxMessage.objects.filter(performed_at__isnull=True, failed_at__isnull=True, available_at__lte=now)
        .order_by("available_at", "id")
        .values_list("pk", flat=True)[:limit]
    )
    summary = {"performed": 0, "retry": 0, "failed": 0, "skipped": 0, "not_due": 0}
    for message_id in due:
        summary[perform_outbox_message(message_id=message_id, now=now)] += 1
    return summary
