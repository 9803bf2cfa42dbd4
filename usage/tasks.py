"""Celery tasks for usage: each takes an ISO instant and calls one service."""

from celery import shared_task

from billingsite.timeparse import parse_instant
from usage.services import metering, parity, rollup


@shared_task
def rollup_usage(now: str | None = None) -> dict:
    return rollup.rollup_usage(now=parse_instant(now))


@shared_task
def report_meter_usage(now: str | None = None) -> dict:
    return metering.report_meter_usage(now=parse_instant(now))


@shared_task
def check_meter_parity(now: str | None = None) -> dict:
    return parity.check_meter_parity(now=parse_instant(now))
