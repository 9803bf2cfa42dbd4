"""Stripe writes decided by payment events go through the outbox: a failed or lost call loses nothing."""

from datetime import timedelta

import pytest
from django.utils import timezone

from orgs.models import OutboxMessage
from orgs.services.outbox import process_outbox
from tests.billing.conftest import deliver, subscribe

pytestmark = pytest.mark.django_db


@pytest.fixture
def failed(org, customer, stripe_standin, stripe_catalog, post_webhook, monkeypatch):
    """A failed plan invoice: the outbox holds "cancel at period end" for its subscription, and its
    fast path (the task sent after the commit) was lost: these tests are about the job."""
    monkeypatch.setattr("orgs.services.outbox._perform_soon", lambda message_id: None)
    plan = stripe_catalog["pro"]
    subscription = subscribe(stripe_standin, org, plan)
    invoice = stripe_standin.add_invoice(
        customer, subscription=subscription, lines=[(plan.stripe_price_id, 4900)]
    )
    deliver(stripe_standin, post_webhook, "invoice.payment_failed", invoice["id"])
    return subscription


def modifications(standin, subscription):
    """The subscription updates Stripe really applied (not injected faults, not replays)."""
    return [
        r
        for r in standin.requests_to("POST", f"/v1/subscriptions/{subscription['id']}")
        if r.fault is None and not r.replayed
    ]


def test_a_failed_call_keeps_the_row_and_the_next_run_performs_it_once(failed, stripe_standin):
    stripe_standin.fail_next(
        "POST", f"/v1/subscriptions/{failed['id']}", status=500, times=3
    )  # library retries twice

    first = process_outbox()

    assert (first["performed"], first["retry"]) == (0, 1)
    message = OutboxMessage.objects.get()
    assert (message.attempts, message.performed_at) == (1, None) and "unreachable" not in message.last_error
    assert stripe_standin.get(failed["id"])["cancel_at_period_end"] is False

    second = process_outbox(now=timezone.now() + timedelta(minutes=1))
    third = process_outbox(now=timezone.now() + timedelta(hours=2))

    assert (second["performed"], third["performed"]) == (1, 0)
    assert stripe_standin.get(failed["id"])["cancel_at_period_end"] is True
    assert len(modifications(stripe_standin, failed)) == 1


def test_an_answer_lost_after_stripe_acted_is_not_applied_twice(failed, stripe_standin, monkeypatch):
    monkeypatch.setattr("stripe.max_network_retries", 0)
    stripe_standin.fail_next("POST", f"/v1/subscriptions/{failed['id']}", status=500, after=True)

    assert process_outbox()["retry"] == 1  # Stripe acted; we never heard
    assert stripe_standin.get(failed["id"])["cancel_at_period_end"] is True

    assert process_outbox(now=timezone.now() + timedelta(minutes=1))["performed"] == 1

    assert OutboxMessage.objects.get().result == {"skipped": "already so"}
    assert len(stripe_standin.requests_to("POST", f"/v1/subscriptions/{failed['id']}")) == 1


def test_a_refusal_is_parked_for_staff(failed, stripe_standin):
    stripe_standin.fail_next(
        "POST",
        f"/v1/subscriptions/{failed['id']}",
        status=400,
        body={"error": {"type": "invalid_request_error", "message": "No such subscription"}},
    )

    assert process_outbox()["failed"] == 1

    message = OutboxMessage.objects.get()
    assert message.failed_at is not None and "No such subscription" in message.last_error
    assert process_outbox(now=timezone.now() + timedelta(days=1))["performed"] == 0


def test_an_ended_subscription_is_left_alone(failed, stripe_standin):
    stripe_standin.update(failed["id"], status="canceled")

    assert process_outbox()["performed"] == 1

    assert OutboxMessage.objects.get().result == {"skipped": "the subscription has already ended"}
    assert not modifications(stripe_standin, failed)
