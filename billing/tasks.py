"""Celery tasks for billing: each takes an ISO instant (or ids) and calls one service."""

from celery import shared_task

from billing.services import allowances, ledger, suspensions
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
