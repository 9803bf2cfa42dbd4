"""Celery tasks for orgs: each takes ids (or an ISO instant) and calls one service."""

from celery import shared_task

from core.instants import parse_instant
from orgs.services import event_delivery, invitations, outbox


@shared_task
def expire_invitations(now: str | None = None) -> dict:
    return invitations.expire_invitations(now=parse_instant(now))


@shared_task
def process_outbox(now: str | None = None) -> dict:
    return outbox.process_outbox(now=parse_instant(now))


@shared_task
def perform_outbox_message(message_id: int) -> str:
    return outbox.perform_outbox_message(message_id=message_id)


@shared_task(acks_late=True)
def deliver_event(delivery_id: int) -> str:
    """Queue: outgoing events. One attempt of one delivery; retries come from the deliver_events job."""
    return event_delivery.deliver_event(delivery_id=delivery_id)


@shared_task(acks_late=True)
def deliver_event_batch(delivery_ids: list[int]) -> dict:
    """Queue: outgoing events. One attempt of each delivery, recorded with one commit."""
    return dict(event_delivery.deliver_events(delivery_ids=delivery_ids))


@shared_task
def deliver_events(now: str | None = None) -> dict:
    return event_delivery.deliver_due_events(now=parse_instant(now))
