"""dj-stripe webhook receivers for usage: each translates one event and hands the work to a task.

They run inside dj-stripe's transaction, once per event id; the work needs committed usage and
sends to Stripe, so it runs in a task enqueued after commit.
"""

import logging

from celery import current_app
from django.core.exceptions import ObjectDoesNotExist
from django.db import transaction
from djstripe.event_handlers import djstripe_receiver

from usage.selectors import closing_period, mirrored_invoice
from usage.services.period_close import record_closed_period

logger = logging.getLogger(__name__)

PERIOD_CLOSE_TASK = "usage.tasks.report_period_overage"


@djstripe_receiver("invoice.created")
def on_invoice_created(sender, event, **kwargs):
    """A period's invoice is open as a draft: report the org's overage up to the period end now, and
    record the period, to be checked against Stripe's meter once its invoice is final."""
    invoice_id = event.data["object"]["id"]
    try:
        # Decided on the copy dj-stripe has just re-read from Stripe, not on the payload.
        invoice = mirrored_invoice(invoice_id)
    except ObjectDoesNotExist:
        logger.warning(
            "Stripe event %s: dj-stripe stored no invoice %s; no period to close.", event.id, invoice_id
        )
        return
    period = closing_period(invoice)
    if period is None:
        return
    # Recorded with the delivery (once per event id): checked against Stripe's meter once final.
    record_closed_period(period)
    transaction.on_commit(lambda: _enqueue(period))


def _enqueue(period) -> None:
    kwargs = {
        "org_id": period.org_id,
        "invoice_id": period.invoice_id,
        "period_end": period.period_end.isoformat(),
        "draft_until": period.draft_until.isoformat(),
    }
    try:
        # By name: the tasks module is above the receivers (it imports the services they lead to).
        current_app.signature(PERIOD_CLOSE_TASK, kwargs=kwargs).delay()
    except Exception:
        # The broker is down: the overage goes with the next hourly report, in the next period.
        logger.exception("Could not enqueue the period close of invoice %s.", period.invoice_id)
