"""Stripe events acknowledged once stored, processed once by the task, swept, failed, replayed."""

import json
from collections import Counter
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from djstripe.models import Customer, Event

from billing.models import (
    BillingAccount,
    PaymentFailure,
    PaymentStatus,
    Plan,
    ReceivedStripeEvent,
    StripeEventProblem,
    StripeEventStatus,
)
from billing.services.catalog_sync import sync_stripe_catalog
from billing.services.checkout import ensure_customer
from billing.services.stripe_events import (
    process_stripe_event,
    replay_stripe_event,
    store_stripe_event,
    sweep_stripe_events,
)
from orgs.models import AuditEntry
from orgs.services.audit import Actor
from orgs.staff import BILLING_ADMIN, SUPPORT
from tests.billing.conftest import deliver, subscribe
from tests.concurrency import committing, run_concurrently
from tests.conftest import submitted
from tests.factories import OrganizationFactory
from tests.stripe_standin.fixtures import WEBHOOK_SECRET
from tests.stripe_standin.server import sign_webhook

pytestmark = pytest.mark.django_db


@pytest.fixture
def pro(customer, stripe_standin, stripe_catalog, org):
    plan = stripe_catalog["pro"]
    return plan, subscribe(stripe_standin, org, plan)


def failed_invoice(standin, customer, pro):
    plan, subscription = pro
    return standin.add_invoice(customer, subscription=subscription, lines=[(plan.stripe_price_id, 4900)])


def lose_the_fast_path(monkeypatch):
    """The task sent after the commit never arrives (a broker lost, a worker killed)."""
    monkeypatch.setattr("billing.services.stripe_events.process_soon", lambda event_id, **kw: None)


def test_the_delivery_is_acknowledged_once_stored_and_processed_after(
    org, customer, pro, stripe_standin, post_webhook, monkeypatch
):
    lose_the_fast_path(monkeypatch)
    event = stripe_standin.event(
        "invoice.payment_failed", failed_invoice(stripe_standin, customer, pro)["id"]
    )
    stripe_standin.requests.clear()

    assert post_webhook(event).status_code == 200

    stored = ReceivedStripeEvent.objects.get()
    assert (stored.event_id, stored.status, stored.payload) == (event["id"], StripeEventStatus.PENDING, event)
    assert stripe_standin.requests == []  # nothing asked of Stripe before the answer
    assert not Event.objects.exists() and not PaymentFailure.objects.exists()


def test_the_sweeper_requeues_what_waited_two_minutes_and_no_sooner(
    org, customer, pro, stripe_standin, post_webhook, monkeypatch
):
    lose_the_fast_path(monkeypatch)
    event = stripe_standin.event(
        "invoice.payment_failed", failed_invoice(stripe_standin, customer, pro)["id"]
    )
    post_webhook(event)
    monkeypatch.undo()

    assert sweep_stripe_events(now=timezone.now() + timedelta(seconds=90))["requeued"] == 0
    summary = sweep_stripe_events(now=timezone.now() + timedelta(minutes=2))

    assert summary == {"requeued": 1, "oldest_pending_seconds": 0}
    assert ReceivedStripeEvent.objects.get().status == StripeEventStatus.PROCESSED
    assert PaymentFailure.objects.count() == 1


def test_processing_an_event_twice_changes_state_once(org, customer, pro, stripe_standin, post_webhook):
    event = deliver(
        stripe_standin,
        post_webhook,
        "invoice.payment_failed",
        failed_invoice(stripe_standin, customer, pro)["id"],
    )

    assert process_stripe_event(event_id=event["id"]) == "skipped"
    assert sweep_stripe_events(now=timezone.now() + timedelta(hours=1))["requeued"] == 0
    assert PaymentFailure.objects.count() == 1
    assert AuditEntry.objects.filter(action="billing.payment_failed").count() == 1


def test_an_unknown_event_id_is_skipped(db):
    assert process_stripe_event(event_id="evt_nothing_stored") == "skipped"


def test_an_event_for_a_customer_without_an_org_fails_and_a_replay_processes_it(
    org, customer, pro, stripe_standin, post_webhook
):
    invoice = failed_invoice(stripe_standin, customer, pro)
    Customer.objects.filter(id=customer).update(subscriber=None)  # the link is missing (say, a bad import)
    event = deliver(stripe_standin, post_webhook, "invoice.payment_failed", invoice["id"])

    stored = ReceivedStripeEvent.objects.get()
    assert (stored.status, stored.attempts) == (StripeEventStatus.FAILED, 1)
    assert "No organization for Stripe customer" in stored.last_error
    assert StripeEventProblem.objects.get().event_id == event["id"]
    assert not PaymentFailure.objects.exists() and not Event.objects.exists()  # undone as a whole
    assert sweep_stripe_events(now=timezone.now() + timedelta(hours=1))["requeued"] == 0  # not retried

    Customer.objects.filter(id=customer).update(subscriber=org)  # staff fix the link
    replay_stripe_event(event_id=event["id"], actor=Actor.system("tests"), reason="customer relinked")
    # (inside a test's transaction the task after the commit does not run: the sweeper takes it)
    sweep_stripe_events(now=timezone.now() + timedelta(minutes=3))

    stored.refresh_from_db()
    assert (stored.status, stored.attempts, stored.last_error) == (StripeEventStatus.PROCESSED, 2, "")
    assert PaymentFailure.objects.get().invoice_id == invoice["id"]
    entry = AuditEntry.objects.get(action="stripe_event.replayed")
    assert (entry.org, entry.invoice_id, entry.reason) == (org, invoice["id"], "customer relinked")


def test_a_processed_event_is_not_replayed(org, customer, pro, stripe_standin, post_webhook):
    from billing.exceptions import StripeEventNotReplayable

    event = deliver(
        stripe_standin,
        post_webhook,
        "invoice.payment_failed",
        failed_invoice(stripe_standin, customer, pro)["id"],
    )

    with pytest.raises(StripeEventNotReplayable):
        replay_stripe_event(event_id=event["id"], actor=Actor.system("tests"), reason="again")


def test_processing_remembers_dj_stripes_key_lookups(org, customer, pro, stripe_standin):
    def stored_event():
        invoice = failed_invoice(stripe_standin, customer, pro)
        event = stripe_standin.event("invoice.payment_failed", invoice["id"])
        store_stripe_event(payload=event)
        return event["id"]

    assert process_stripe_event(event_id=stored_event()) == "processed"
    with CaptureQueriesContext(connection) as queries:
        assert process_stripe_event(event_id=stored_event()) == "processed"

    keys = [q["sql"] for q in queries.captured_queries if '"djstripe_apikey"' in q["sql"]]
    assert keys == []  # dj-stripe asked for the key's account again and again: remembered now


# --- the admin ------------------------------------------------------------------------------------


def staff_client(client, name, group):
    user = User.objects.create_user(name, f"{name}@staff.example", "pw", is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    client.force_login(user)
    return client


@pytest.fixture
def failed_event(org, customer, pro, stripe_standin, post_webhook):
    Customer.objects.filter(id=customer).update(subscriber=None)
    event = deliver(
        stripe_standin,
        post_webhook,
        "invoice.payment_failed",
        failed_invoice(stripe_standin, customer, pro)["id"],
    )
    Customer.objects.filter(id=customer).update(subscriber=org)
    return ReceivedStripeEvent.objects.get(event_id=event["id"])


def test_the_admin_lists_failed_events_with_their_error(client, failed_event):
    support = staff_client(client, "sam", SUPPORT)

    page = support.get(reverse("admin:billing_receivedstripeevent_changelist"), {"attention": "any"})

    assert page.status_code == 200
    assert failed_event.event_id in page.content.decode()
    assert "No organization for Stripe customer" in page.content.decode()


def test_support_may_not_replay(client, failed_event):
    support = staff_client(client, "sam", SUPPORT)
    url = reverse("admin:billing_receivedstripeevent_act", args=[failed_event.pk, "replay"])

    assert support.post(url, submitted({"reason": "try again"})).status_code == 403
    failed_event.refresh_from_db()
    assert failed_event.status == StripeEventStatus.FAILED


def test_billing_admin_replays_through_the_task(client, failed_event, django_capture_on_commit_callbacks):
    admin = staff_client(client, "bea", BILLING_ADMIN)
    url = reverse("admin:billing_receivedstripeevent_act", args=[failed_event.pk, "replay"])

    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(url, submitted({"reason": "customer relinked"}), follow=True)

    assert "queued for processing again" in str(next(iter(response.context["messages"])))
    failed_event.refresh_from_db()
    assert (failed_event.status, failed_event.attempts) == (StripeEventStatus.PROCESSED, 2)
    assert PaymentFailure.objects.count() == 1
    assert AuditEntry.objects.get(action="stripe_event.replayed").actor_user.username == "bea"


# --- real concurrency ------------------------------------------------------------------------------


@committing
def test_concurrent_tasks_for_one_event_process_it_once(djstripe_webhook_endpoint, stripe_standin, catalog):
    sync_stripe_catalog()
    org = OrganizationFactory()
    with transaction.atomic():
        customer = ensure_customer(org)
    plan = Plan.objects.get(name="pro")
    invoice = stripe_standin.add_invoice(
        customer, subscription=subscribe(stripe_standin, org, plan), lines=[(plan.stripe_price_id, 4900)]
    )
    event = stripe_standin.event("invoice.payment_failed", invoice["id"])
    ReceivedStripeEvent.objects.create(
        event_id=event["id"],
        event_type=event["type"],
        payload=event,
        received_at=timezone.now(),
        next_attempt_at=timezone.now(),
    )

    outcomes = run_concurrently(lambda i: process_stripe_event(event_id=event["id"]), 4)

    assert sorted(outcomes) == ["processed", "skipped", "skipped", "skipped"]
    assert PaymentFailure.objects.count() == 1
    assert AuditEntry.objects.filter(action="billing.payment_failed").count() == 1


def post_signed(path: str, body: str) -> int:
    return (
        Client()
        .post(path, body, content_type="application/json", headers=sign_webhook(body, WEBHOOK_SECRET))
        .status_code
    )


@committing
def test_a_burst_of_100_deliveries_of_20_events_ends_as_the_events_processed_once_in_order(
    djstripe_webhook_endpoint, stripe_standin, catalog
):
    """Four orgs' invoices fail and some are paid, one org upgrades: 20 events, each delivered five
    times, all at once and out of order (10 clients). The end state is the one processing the 20
    events once, in order, gives: decisions are taken from Stripe's state under the account lock."""
    sync_stripe_catalog()
    pro, team = Plan.objects.get(name="pro"), Plan.objects.get(name="team")
    orgs, events = [], []
    for n in range(4):
        org = OrganizationFactory()
        with transaction.atomic():
            customer = ensure_customer(org)
        subscription = subscribe(stripe_standin, org, pro)
        orgs.append(org)
        for i in range(2):
            invoice = stripe_standin.add_invoice(
                customer, subscription=subscription, lines=[(pro.stripe_price_id, 4900)]
            )
            events.append(stripe_standin.event("invoice.payment_failed", invoice["id"]))
            if (n + i) % 2 == 0:  # paid later: half of the invoices
                stripe_standin.update(invoice["id"], status="paid", amount_paid=4900, amount_remaining=0)
                events.append(stripe_standin.event("invoice.paid", invoice["id"]))
    upgraded = subscribe(stripe_standin, orgs[0], team)
    events.append(stripe_standin.event("customer.subscription.created", upgraded["id"]))
    events += [stripe_standin.event("customer.subscription.updated", upgraded["id"]) for _ in range(3)]
    for org in [*orgs[1:], orgs[1]]:
        (subscription,) = [
            s for s in stripe_standin.get_all("subscription") if s["customer"] == customer_of(org)
        ]
        events.append(stripe_standin.event("customer.subscription.updated", subscription["id"]))
    assert len(events) == len({e["id"] for e in events}) == 20

    path = f"/stripe/webhook/{djstripe_webhook_endpoint.djstripe_uuid}/"
    deliveries = [json.dumps(event) for event in events for _ in range(5)]

    def client(index: int) -> list[int]:
        statuses = []
        for body in deliveries[index::10]:
            statuses.append(post_signed(path, body))
        return statuses

    statuses = [s for batch in run_concurrently(client, 10) for s in batch]

    assert Counter(statuses) == {200: 100}
    assert ReceivedStripeEvent.objects.filter(status=StripeEventStatus.PROCESSED).count() == 20
    assert Event.objects.count() == 20
    owed = {i["id"] for i in stripe_standin.get_all("invoice") if i["status"] == "open"}
    assert (
        set(PaymentFailure.objects.filter(resolved_at__isnull=True).values_list("invoice_id", flat=True))
        == owed
    )
    for org in orgs:
        account = BillingAccount.objects.get(org=org)
        open_failures = PaymentFailure.objects.filter(org=org, resolved_at__isnull=True).exists()
        assert account.payment_status == (PaymentStatus.PAST_DUE if open_failures else PaymentStatus.OK)
    assert BillingAccount.objects.get(org=orgs[0]).plan == team
    opened = Counter(
        AuditEntry.objects.filter(action="billing.payment_failed").values_list("invoice_id", flat=True)
    )
    assert set(opened.values()) == {1} and owed <= set(opened)  # each failure opened once at most
    assert BillingAccount.objects.filter(plan=team).count() == 1


def customer_of(org) -> str:
    return Customer.objects.get(subscriber=org).id


@committing
def test_without_a_broker_the_event_is_processed_in_process_right_after_its_commit(
    djstripe_webhook_endpoint, stripe_standin, catalog
):
    # The embedded default (no REDIS_URL): tasks run where they are sent, here after the store's
    # commit, inside the webhook's request; the answer is still 200 whatever the processing meets.
    sync_stripe_catalog()
    org = OrganizationFactory()
    with transaction.atomic():
        customer = ensure_customer(org)
    plan = Plan.objects.get(name="pro")
    invoice = stripe_standin.add_invoice(
        customer, subscription=subscribe(stripe_standin, org, plan), lines=[(plan.stripe_price_id, 4900)]
    )
    path = f"/stripe/webhook/{djstripe_webhook_endpoint.djstripe_uuid}/"

    status = post_signed(path, json.dumps(stripe_standin.event("invoice.payment_failed", invoice["id"])))

    assert status == 200
    assert ReceivedStripeEvent.objects.get().status == StripeEventStatus.PROCESSED
    assert PaymentFailure.objects.get().invoice_id == invoice["id"]
