"""The Celery queues and the one place every task is routed to one (`CELERY_TASK_ROUTES`).

Four queues, so that one kind of backlog never delays another: a Stripe outage that piles up
webhook processing and outbox calls never holds back the rollup or the allowances, and a slow
maintenance job never holds back either. Production runs a worker per queue (`Procfile`,
docs/OPERATING.md: Queues and workers); a bare `celery -A billingsite worker` consumes all four.
A task missing here would fall to `maintenance`; tests/site/test_queues.py fails the build first.
"""

STRIPE = "stripe"  # Stripe traffic: webhook processing, outbox messages (Stripe calls, emails)
EVENTS = "events"  # outgoing events: deliveries to products' endpoints
INGEST = "ingest"  # ingestion-side jobs: rollup, allowances, expiry, meter reporting
MAINTENANCE = "maintenance"  # slow or rare jobs: parity, ledger checks, suspensions, invitations

QUEUES = (STRIPE, EVENTS, INGEST, MAINTENANCE)

TASK_QUEUES: dict[str, str] = {
    "billing.tasks.process_stripe_event": STRIPE,
    "billing.tasks.sweep_stripe_events": STRIPE,
    "orgs.tasks.process_outbox": STRIPE,
    "orgs.tasks.perform_outbox_message": STRIPE,
    "orgs.tasks.deliver_event": EVENTS,
    "orgs.tasks.deliver_event_batch": EVENTS,
    "orgs.tasks.deliver_events": EVENTS,
    "usage.tasks.rollup_usage": INGEST,
    "usage.tasks.report_meter_usage": INGEST,
    "usage.tasks.report_period_overage": INGEST,
    "billing.tasks.grant_monthly_allowances": INGEST,
    "billing.tasks.expire_credit_grants": INGEST,
    "usage.tasks.check_meter_parity": MAINTENANCE,
    "usage.tasks.check_closed_periods": MAINTENANCE,
    "billing.tasks.check_ledger_consistency": MAINTENANCE,
    "billing.tasks.reconcile_suspensions": MAINTENANCE,
    "orgs.tasks.expire_invitations": MAINTENANCE,
    "usage.tasks.create_usage_partitions": MAINTENANCE,
    "usage.tasks.archive_usage_partitions": MAINTENANCE,
}

TASK_ROUTES: dict[str, dict[str, str]] = {task: {"queue": queue} for task, queue in TASK_QUEUES.items()}
