"""Payment decisions under real timing: overlapping deliveries, late answers, delayed outbox messages."""

import json
import threading
import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone

from billing.models import BillingAccount, PaymentFailure, PaymentStatus, Plan
from billing.services.catalog_sync import sync_stripe_catalog
from billing.services.checkout import ensure_customer
from billing.services.payments import lock_account
from orgs.models import OutboxMessage
from orgs.services.outbox import perform_outbox_message, process_outbox
from tests.billing.conftest import deliver, subscribe
from tests.concurrency import committing, run_concurrently
from tests.factories import OrganizationFactory
from tests.stripe_standin.fixtures import WEBHOOK_SECRET
from tests.stripe_standin.server import sign_webhook


def signed_post(endpoint, event: dict):
    """A delivery from its own client: safe to make from a thread."""
    body = json.dumps(event)
    return Client().post(
        f"/stripe/webhook/{endpoint.djstripe_uuid}/",
        body,
        content_type="application/json",
        headers=sign_webhook(body, WEBHOOK_SECRET),
    )


@pytest.fixture
def committed_pro(djstripe_webhook_endpoint, stripe_standin, catalog):
    """A committed org on pro with an open plan invoice that dj-stripe has already mirrored."""
    sync_stripe_catalog()
    org = OrganizationFactory()
    with transaction.atomic():
        customer = ensure_customer(org)
    plan = Plan.objects.get(name="pro")
    subscription = subscribe(stripe_standin, org, plan)
    invoice = stripe_standin.add_invoice(
        customer, subscription=subscription, lines=[(plan.stripe_price_id, 4900)]
    )
    # dj-stripe mirrors the invoice (and its customer and subscription) on a first, harmless event.
    assert (
        signed_post(
            djstripe_webhook_endpoint, stripe_standin.event("invoice.finalized", invoice["id"])
        ).status_code
        == 200
    )
    return org, subscription, invoice


@committing
def test_a_failure_whose_reread_answers_late_is_decided_from_the_newer_state(
    committed_pro, djstripe_webhook_endpoint, stripe_standin
):
    org, subscription, invoice = committed_pro
    failed = stripe_standin.event("invoice.payment_failed", invoice["id"])
    # dj-stripe's re-read for the failure answers "open", but only 1.5 s later.
    stripe_standin.fail_next("GET", f"/v1/invoices/{invoice['id']}", status=None, delay=1.5)
    stripe_standin.requests.clear()
    statuses = []
    failure_delivery = threading.Thread(
        target=lambda: statuses.append(signed_post(djstripe_webhook_endpoint, failed).status_code)
    )
    failure_delivery.start()
    deadline = time.perf_counter() + 10
    while not stripe_standin.requests_to("GET", f"/v1/invoices/{invoice['id']}"):
        assert time.perf_counter() < deadline
        time.sleep(0.01)

    # Meanwhile the customer pays and that delivery is processed whole.
    stripe_standin.update(invoice["id"], status="paid", amount_paid=4900, amount_remaining=0)
    paid = signed_post(djstripe_webhook_endpoint, stripe_standin.event("invoice.paid", invoice["id"]))
    failure_delivery.join(timeout=30)

    assert (paid.status_code, statuses) == (200, [200])
    account = BillingAccount.objects.get(org=org)
    assert (account.payment_status, account.overdue_since) == (PaymentStatus.OK, None)
    assert not PaymentFailure.objects.filter(invoice_id=invoice["id"], resolved_at__isnull=True).exists()
    process_outbox()
    assert stripe_standin.get(subscription["id"])["cancel_at_period_end"] is False
    from djstripe.models import Invoice

    assert Invoice.objects.get(id=invoice["id"]).stripe_data["status"] == "paid"  # the mirror too


@committing
def test_a_plan_change_while_waiting_for_the_account_lock_is_no_error(catalog):
    org = OrganizationFactory()
    team = Plan.objects.get(name="team")
    changed = threading.Event()

    def work(index):
        with transaction.atomic():
            if index == 0:  # a subscription event changes plan_id and holds the lock a moment
                account = lock_account(org)
                account.plan = team
                account.save(update_fields=["plan"])
                changed.set()
                time.sleep(0.5)
                return "changed"
            assert changed.wait(timeout=10)
            return lock_account(org).plan.name  # once raised BillingAccount.DoesNotExist

    assert run_concurrently(work, 2) == ["changed", "team"]


@committing
def test_sixteen_concurrent_deliveries_that_change_the_plan_all_succeed(
    committed_pro, djstripe_webhook_endpoint, stripe_standin
):
    org, subscription, invoice = committed_pro
    team = subscribe(stripe_standin, org, Plan.objects.get(name="team"))
    events = [
        stripe_standin.event("customer.subscription.updated", (subscription if i % 2 else team)["id"])
        if i % 4
        else stripe_standin.event("invoice.payment_failed", invoice["id"])
        for i in range(16)
    ]

    statuses = run_concurrently(lambda i: signed_post(djstripe_webhook_endpoint, events[i]).status_code, 16)

    assert statuses == [200] * 16
    assert BillingAccount.objects.get(org=org).plan.name == "team"


@pytest.mark.django_db
def test_a_delayed_cancel_performed_after_the_keep_leaves_the_subscription_kept(
    org, customer, stripe_standin, stripe_catalog, post_webhook
):
    plan = stripe_catalog["pro"]
    subscription = subscribe(stripe_standin, org, plan)
    invoice = stripe_standin.add_invoice(
        customer, subscription=subscription, lines=[(plan.stripe_price_id, 4900)]
    )
    stripe_standin.fail_next("POST", f"/v1/subscriptions/{subscription['id']}", status=503, times=3)
    deliver(stripe_standin, post_webhook, "invoice.payment_failed", invoice["id"])
    (cancel,) = OutboxMessage.objects.all()
    assert (cancel.performed_at, cancel.attempts) == (None, 1)  # Stripe is down: the cancel backs off

    stripe_standin.update(invoice["id"], status="paid", amount_paid=4900, amount_remaining=0)
    deliver(stripe_standin, post_webhook, "invoice.paid", invoice["id"])
    keep = OutboxMessage.objects.exclude(pk=cancel.pk).get()
    assert keep.performed_at is not None  # the keep runs first, right after its event's commit
    later = timezone.now() + timedelta(minutes=2)
    assert perform_outbox_message(message_id=cancel.pk, now=later) == "performed"  # then the cancel

    cancel.refresh_from_db()
    assert cancel.result == {"skipped": "already so"}
    assert stripe_standin.get(subscription["id"])["cancel_at_period_end"] is False
