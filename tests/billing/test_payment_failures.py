from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from billing.models import (
    BillingAccount,
    FailureResolution,
    InvoiceKind,
    InvoiceRecord,
    PaymentFailure,
    PaymentStatus,
    ReceivedStripeEvent,
    StripeEventStatus,
    SuspensionSource,
)
from billing.services.stripe_events import sweep_stripe_events
from billing.services.suspensions import OVERDUE_GRACE, reconcile_suspensions
from orgs.models import AuditEntry, OutboxMessage
from orgs.services.outbox import process_outbox
from tests.billing.conftest import deliver, subscribe

pytestmark = pytest.mark.django_db


@pytest.fixture
def pro(org, customer, stripe_standin, stripe_catalog):
    """The org on pro: its subscription in the stand-in, and the plan and metered prices."""
    plan = stripe_catalog["pro"]
    subscription = subscribe(stripe_standin, org, plan)
    return subscription, plan.stripe_price_id, plan.stripe_overage_price_id


def account(org):
    return BillingAccount.objects.get(org=org)


def plan_invoice(standin, customer, pro, status="open", **fields):
    subscription, monthly, _ = pro
    return standin.add_invoice(
        customer, subscription=subscription, status=status, lines=[(monthly, 4900)], **fields
    )


def metered_invoice(standin, customer, pro, status="open", amount=1850, **fields):
    subscription, _, overage = pro
    return standin.add_invoice(
        customer, subscription=subscription, status=status, lines=[(overage, amount, 3700)], **fields
    )


def test_a_failed_plan_invoice_makes_the_org_past_due_and_asks_to_cancel_at_period_end(
    org, customer, pro, stripe_standin, post_webhook
):
    invoice = plan_invoice(stripe_standin, customer, pro)

    event = deliver(stripe_standin, post_webhook, "invoice.payment_failed", invoice["id"])

    failure = PaymentFailure.objects.get()
    assert (failure.invoice_id, failure.kind, failure.is_open) == (invoice["id"], InvoiceKind.PLAN, True)
    assert failure.first_failed_at == datetime.fromtimestamp(event["created"], tz=UTC)
    assert (account(org).payment_status, account(org).overdue_since) == (
        PaymentStatus.PAST_DUE,
        failure.first_failed_at,
    )
    message = OutboxMessage.objects.get()
    assert (message.kind, message.payload["subscription_id"]) == (
        "stripe.subscription.follow_payment_failures",
        pro[0]["id"],
    )

    message.refresh_from_db()
    assert message.performed_at is not None  # performed right after the event's commit

    subscription = stripe_standin.get(pro[0]["id"])
    assert subscription["cancel_at_period_end"] is True
    assert subscription["metadata"]["billing_cancel_reason"] == "payment_failure"
    (modify,) = stripe_standin.requests_to("POST", f"/v1/subscriptions/{pro[0]['id']}")
    assert modify.idempotency_key == f"{message.idempotency_key}:cancel"


def test_paying_it_resolves_the_failure_and_asks_to_keep_the_subscription(
    org, customer, pro, stripe_standin, post_webhook
):
    invoice = plan_invoice(stripe_standin, customer, pro)
    deliver(stripe_standin, post_webhook, "invoice.payment_failed", invoice["id"])
    process_outbox()
    stripe_standin.update(invoice["id"], status="paid", amount_paid=4900, amount_remaining=0)

    deliver(stripe_standin, post_webhook, "invoice.paid", invoice["id"])
    process_outbox()

    failure = PaymentFailure.objects.get()
    assert (failure.resolution, failure.resolved_at is not None) == (FailureResolution.PAID, True)
    assert (account(org).payment_status, account(org).overdue_since) == (PaymentStatus.OK, None)
    assert account(org).first_paid_at is not None
    assert stripe_standin.get(pro[0]["id"])["cancel_at_period_end"] is False


def test_a_stale_failure_event_after_a_payment_changes_nothing(
    org, customer, pro, stripe_standin, post_webhook
):
    invoice = plan_invoice(stripe_standin, customer, pro)
    failed = stripe_standin.event("invoice.payment_failed", invoice["id"])
    stripe_standin.update(invoice["id"], status="paid", amount_paid=4900, amount_remaining=0)
    deliver(stripe_standin, post_webhook, "invoice.paid", invoice["id"])

    assert post_webhook(failed).status_code == 200  # delivered late, after the payment

    assert not PaymentFailure.objects.exists()
    assert account(org).payment_status == PaymentStatus.OK
    assert not OutboxMessage.objects.exists()


def test_a_failed_metered_invoice_blocks(org, customer, pro, stripe_standin, post_webhook):
    invoice = metered_invoice(stripe_standin, customer, pro)

    deliver(stripe_standin, post_webhook, "invoice.payment_failed", invoice["id"])

    assert PaymentFailure.objects.get().kind == InvoiceKind.METERED
    assert account(org).payment_status == PaymentStatus.BLOCKED
    assert not OutboxMessage.objects.exists()  # only plan failures touch the subscription


def test_two_failed_metered_invoices_with_one_paid_stay_blocked(
    org, customer, pro, stripe_standin, post_webhook
):
    first, second = (
        metered_invoice(stripe_standin, customer, pro),
        metered_invoice(stripe_standin, customer, pro),
    )
    deliver(stripe_standin, post_webhook, "invoice.payment_failed", first["id"])
    with time_machine.travel(timezone.now() + timedelta(hours=1)):
        deliver(stripe_standin, post_webhook, "invoice.payment_failed", second["id"])
    stripe_standin.update(first["id"], status="paid", amount_paid=1850, amount_remaining=0)

    deliver(stripe_standin, post_webhook, "invoice.paid", first["id"])

    assert account(org).payment_status == PaymentStatus.BLOCKED
    assert account(org).overdue_since == PaymentFailure.objects.get(invoice_id=second["id"]).first_failed_at


def test_blocked_wins_over_past_due(org, customer, pro, stripe_standin, post_webhook):
    deliver(
        stripe_standin,
        post_webhook,
        "invoice.payment_failed",
        plan_invoice(stripe_standin, customer, pro)["id"],
    )
    assert account(org).payment_status == PaymentStatus.PAST_DUE

    deliver(
        stripe_standin,
        post_webhook,
        "invoice.payment_failed",
        metered_invoice(stripe_standin, customer, pro)["id"],
    )

    assert account(org).payment_status == PaymentStatus.BLOCKED


def test_a_mixed_invoice_counts_as_metered(customer, pro, stripe_standin, post_webhook):
    subscription, monthly, overage = pro
    invoice = stripe_standin.add_invoice(
        customer, subscription=subscription, lines=[(monthly, 4900), (overage, 1850, 3700)]
    )

    deliver(stripe_standin, post_webhook, "invoice.payment_failed", invoice["id"])

    assert InvoiceRecord.objects.get(invoice_id=invoice["id"]).kind == InvoiceKind.METERED


def test_a_metered_line_of_zero_does_not_make_it_metered(customer, pro, stripe_standin, post_webhook):
    subscription, monthly, overage = pro
    invoice = stripe_standin.add_invoice(
        customer, subscription=subscription, lines=[(monthly, 4900), (overage, 0, 0)]
    )

    deliver(stripe_standin, post_webhook, "invoice.payment_failed", invoice["id"])

    assert InvoiceRecord.objects.get(invoice_id=invoice["id"]).kind == InvoiceKind.PLAN


def test_every_line_is_read_even_past_the_first_page(customer, pro, stripe_standin, post_webhook):
    subscription, monthly, overage = pro
    lines = [(monthly, 100)] * 12 + [(overage, 1850, 3700)]
    invoice = stripe_standin.add_invoice(customer, subscription=subscription, lines=lines)

    deliver(stripe_standin, post_webhook, "invoice.payment_failed", invoice["id"])

    assert InvoiceRecord.objects.get(invoice_id=invoice["id"]).kind == InvoiceKind.METERED
    assert stripe_standin.requests_to("GET", f"/v1/invoices/{invoice['id']}/lines")


def test_the_kind_is_fixed_the_first_time_the_invoice_is_seen(customer, pro, stripe_standin, post_webhook):
    subscription, _, overage = pro
    invoice = plan_invoice(stripe_standin, customer, pro)
    deliver(stripe_standin, post_webhook, "invoice.payment_failed", invoice["id"])
    changed = stripe_standin.add_invoice(customer, subscription=subscription, lines=[(overage, 1850, 3700)])
    stripe_standin.update(invoice["id"], lines=changed["lines"], status="void")

    deliver(stripe_standin, post_webhook, "invoice.voided", invoice["id"])

    assert InvoiceRecord.objects.get(invoice_id=invoice["id"]).kind == InvoiceKind.PLAN


@pytest.mark.parametrize(
    ("status", "event_type", "resolution", "ends_at_period_end"),
    [
        ("void", "invoice.voided", FailureResolution.VOID, False),  # nothing is owed any more
        ("uncollectible", "invoice.marked_uncollectible", FailureResolution.UNCOLLECTIBLE, True),  # unpaid
    ],
)
def test_void_or_uncollectible_resolves_the_failure(
    org, customer, pro, stripe_standin, post_webhook, status, event_type, resolution, ends_at_period_end
):
    invoice = plan_invoice(stripe_standin, customer, pro)
    deliver(stripe_standin, post_webhook, "invoice.payment_failed", invoice["id"])
    process_outbox()
    stripe_standin.update(invoice["id"], status=status)

    deliver(stripe_standin, post_webhook, event_type, invoice["id"])
    process_outbox()

    assert PaymentFailure.objects.get().resolution == resolution
    assert account(org).payment_status == PaymentStatus.OK
    assert stripe_standin.get(pro[0]["id"])["cancel_at_period_end"] is ends_at_period_end
    assert account(org).first_paid_at is None


def test_a_zero_invoice_paid_does_not_count_as_paid(org, customer, pro, stripe_standin, post_webhook):
    invoice = plan_invoice(stripe_standin, customer, pro, status="paid", amount_paid=0)

    deliver(stripe_standin, post_webhook, "invoice.paid", invoice["id"])

    assert account(org).first_paid_at is None


def test_the_first_real_payment_sets_first_paid_at_once(org, customer, pro, stripe_standin, post_webhook):
    paid_at = int((timezone.now() - timedelta(days=1)).timestamp())
    first = plan_invoice(
        stripe_standin, customer, pro, status="paid", status_transitions={"paid_at": paid_at}
    )
    deliver(stripe_standin, post_webhook, "invoice.paid", first["id"])
    second = plan_invoice(stripe_standin, customer, pro, status="paid")

    deliver(stripe_standin, post_webhook, "invoice.paid", second["id"])

    assert account(org).first_paid_at == datetime.fromtimestamp(paid_at, tz=UTC)
    assert AuditEntry.objects.filter(org=org, action="billing.first_paid").count() == 1


def test_paying_lifts_an_auto_suspension_at_once(org, customer, pro, stripe_standin, post_webhook):
    invoice = plan_invoice(stripe_standin, customer, pro)
    deliver(stripe_standin, post_webhook, "invoice.payment_failed", invoice["id"])
    reconcile_suspensions(now=timezone.now() + OVERDUE_GRACE + timedelta(minutes=1))
    assert account(org).suspension_source == SuspensionSource.AUTO
    stripe_standin.update(invoice["id"], status="paid", amount_paid=4900, amount_remaining=0)

    deliver(stripe_standin, post_webhook, "invoice.paid", invoice["id"])

    assert (account(org).suspended_at, account(org).suspension_source) == (None, "")
    assert AuditEntry.objects.filter(org=org, action="suspension.lifted").count() == 1


def test_the_same_failure_delivered_five_times_changes_state_once(
    org, customer, pro, stripe_standin, post_webhook
):
    event = stripe_standin.event("invoice.payment_failed", plan_invoice(stripe_standin, customer, pro)["id"])

    assert [post_webhook(event).status_code for _ in range(5)] == [200] * 5

    assert PaymentFailure.objects.count() == 1
    assert OutboxMessage.objects.count() == 1
    assert AuditEntry.objects.filter(org=org, action="billing.payment_failed").count() == 1


def test_a_second_failure_keeps_the_first_failure_time(org, customer, pro, stripe_standin, post_webhook):
    invoice = plan_invoice(stripe_standin, customer, pro)
    first = deliver(stripe_standin, post_webhook, "invoice.payment_failed", invoice["id"])
    with time_machine.travel(timezone.now() + timedelta(days=2)):
        deliver(stripe_standin, post_webhook, "invoice.payment_failed", invoice["id"])

    assert PaymentFailure.objects.get().first_failed_at == datetime.fromtimestamp(first["created"], tz=UTC)


def test_stripe_down_while_rereading_is_acknowledged_and_retried_by_the_task(
    org, customer, pro, stripe_standin, post_webhook, monkeypatch
):
    from djstripe.models import Event

    invoice = plan_invoice(stripe_standin, customer, pro)
    event = stripe_standin.event("invoice.payment_failed", invoice["id"])
    monkeypatch.setattr("stripe.max_network_retries", 0)
    stripe_standin.fail_next("GET", f"/v1/invoices/{invoice['id']}", status=503)

    # The delivery is stored and acknowledged; dj-stripe's re-fetch or ours meets the outage and
    # the processing is undone as a whole, to be tried again after a backoff.
    assert post_webhook(event).status_code == 200
    stored = ReceivedStripeEvent.objects.get(event_id=event["id"])
    assert (stored.status, stored.attempts) == (StripeEventStatus.PENDING, 1)
    assert stored.last_error.startswith("stripe._error.APIError")
    assert not PaymentFailure.objects.exists() and not Event.objects.filter(id=event["id"]).exists()

    assert post_webhook(event).status_code == 200  # Stripe's redelivery stores nothing new
    assert ReceivedStripeEvent.objects.count() == 1
    later = timezone.now() + timedelta(minutes=3)
    with time_machine.travel(later):
        assert sweep_stripe_events()["requeued"] == 1  # the sweeper's requeue runs it (in process here)
    stored.refresh_from_db()
    assert (stored.status, stored.attempts, stored.last_error) == (StripeEventStatus.PROCESSED, 2, "")
    assert PaymentFailure.objects.count() == 1


def test_an_uncollectible_invoice_paid_later_is_resolved_as_paid(
    org, customer, pro, stripe_standin, post_webhook
):
    invoice = plan_invoice(stripe_standin, customer, pro)
    deliver(stripe_standin, post_webhook, "invoice.payment_failed", invoice["id"])
    stripe_standin.update(invoice["id"], status="uncollectible")
    deliver(stripe_standin, post_webhook, "invoice.marked_uncollectible", invoice["id"])
    stripe_standin.update(invoice["id"], status="paid", amount_paid=4900, amount_remaining=0)

    deliver(stripe_standin, post_webhook, "invoice.paid", invoice["id"])

    assert PaymentFailure.objects.get().resolution == FailureResolution.PAID
    assert account(org).first_paid_at is not None


def test_paying_an_invoice_marked_uncollectible_keeps_the_subscription(
    org, customer, pro, stripe_standin, post_webhook
):
    # Once asked to keep only when an open failure was paid: "uncollectible" had already resolved it,
    # so paying it later never undid the cancellation.
    invoice = plan_invoice(stripe_standin, customer, pro)
    deliver(stripe_standin, post_webhook, "invoice.payment_failed", invoice["id"])
    stripe_standin.update(invoice["id"], status="uncollectible")
    deliver(stripe_standin, post_webhook, "invoice.marked_uncollectible", invoice["id"])
    process_outbox()
    assert stripe_standin.get(pro[0]["id"])["cancel_at_period_end"] is True
    stripe_standin.update(invoice["id"], status="paid", amount_paid=4900, amount_remaining=0)

    deliver(stripe_standin, post_webhook, "invoice.paid", invoice["id"])
    process_outbox()

    subscription = stripe_standin.get(pro[0]["id"])
    assert (subscription["cancel_at_period_end"], subscription["metadata"]) == (False, {})


def test_a_cancellation_nobody_asked_for_a_payment_failure_is_never_undone(
    org, customer, pro, stripe_standin, post_webhook
):
    stripe_standin.update(pro[0]["id"], cancel_at_period_end=True)  # the customer cancelled
    invoice = plan_invoice(stripe_standin, customer, pro)
    deliver(stripe_standin, post_webhook, "invoice.payment_failed", invoice["id"])
    process_outbox()
    stripe_standin.update(invoice["id"], status="paid", amount_paid=4900, amount_remaining=0)

    deliver(stripe_standin, post_webhook, "invoice.paid", invoice["id"])
    process_outbox()

    assert [m.result for m in OutboxMessage.objects.order_by("id")] == [
        {"skipped": "already so"},
        {"skipped": "the cancellation was not asked for a payment failure"},
    ]
    assert stripe_standin.get(pro[0]["id"])["cancel_at_period_end"] is True
