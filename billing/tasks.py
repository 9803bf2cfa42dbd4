"""Celery tasks for billing: each takes an ISO instant (or ids) and calls one service."""

from celery import shared_task

from billing.services import allowances, ledger, stripe_events, suspensions
from core.instants import parse_instant


@shared_task
def grant_monthly_allowances(now: str | None = None) -> dict:
    return allowances.grant_monthly_allowances(now=parse_instant(now))


@shared_task
def expire_credit_grants(now: str | None = None) -> dict:
    return ledger.expire_credit_grants(now=parse_instant(now))


@shared_task
def check_ledger_consistency(now: str | None = None) -> dict:
    return ledger.check_ledger_consistency(now=parse_instant(now))


@shared_task
def reconcile_suspensions(now: str | None = None) -> dict:
    return suspensions.reconcile_suspensions(now=parse_instant(now))


@shared_task(bind=True, acks_late=True, max_retries=None)
def process_stripe_event(self, event_id: str) -> str:
    """Queue: Stripe traffic. Processes one stored Stripe event at most once; transient trouble is
    retried here with the service's backoff (and by the sweeper, should this message be lost)."""
    outcome = stripe_events.process_stripe_event(event_id=event_id)
    if outcome == "retry" and not self.request.is_eager:
        delay = stripe_events.retry_delay(event_id)
        if delay is not None:
            raise self.retry(countdown=delay)
    return outcome


@shared_task
def sweep_stripe_events(now: str | None = None) -> dict:
    return stripe_events.sweep_stripe_events(now=parse_instant(now))
