"""The org events products receive: suspension, payment status, plan, soft delete and restore.
Org events go to every product's endpoint subscribed to them, for every org."""

from datetime import UTC, datetime

import pytest

from billing.models import BillingAccount, PaymentStatus
from billing.services.accounts import soft_delete_organization
from billing.services.suspensions import OVERDUE_GRACE, lift_suspension, reconcile_suspensions
from orgs.models import EventType, OutgoingEvent
from orgs.services.audit import Actor
from orgs.services.event_endpoints import create_endpoint
from orgs.services.organizations import restore_organization
from tests.billing.conftest import deliver, subscribe

pytestmark = pytest.mark.django_db

STAFF = Actor.system("tests")
OVERDUE = datetime(2026, 11, 1, 12, tzinfo=UTC)


@pytest.fixture
def blue_listens(other_product, receiver):
    """Blue, which never wrote about any org here, listens to every org event."""
    org_events = [t for t in EventType.values if t.startswith("org.")]
    return create_endpoint(
        product=other_product,
        url=receiver.url,
        event_types=org_events,
        actor=Actor.for_product(other_product),
    )


def told(org) -> list[tuple[str, dict]]:
    return [(e.event_type, e.data) for e in OutgoingEvent.objects.filter(org=org).order_by("sequence")]


def test_suspension_and_its_lifting_are_told(org, blue_listens):
    BillingAccount.objects.filter(org=org).update(
        payment_status=PaymentStatus.PAST_DUE, overdue_since=OVERDUE
    )

    reconcile_suspensions(now=OVERDUE + OVERDUE_GRACE)
    reconcile_suspensions(now=OVERDUE + OVERDUE_GRACE)  # nothing changes: nothing told
    lift_suspension(org=org, reason="goodwill", actor=STAFF)

    assert told(org) == [
        ("org.suspended", {"suspended": True, "source": "auto"}),
        ("org.unsuspended", {"suspended": False, "source": "auto"}),
    ]


def test_a_payment_failure_and_its_payment_are_told(
    org, customer, stripe_standin, stripe_catalog, post_webhook, blue_listens
):
    plan = stripe_catalog["pro"]
    subscription = subscribe(stripe_standin, org, plan)
    invoice = stripe_standin.add_invoice(
        customer, subscription=subscription, lines=[(plan.stripe_price_id, 4900)]
    )
    failed = deliver(stripe_standin, post_webhook, "invoice.payment_failed", invoice["id"])
    stripe_standin.update(invoice["id"], status="paid", amount_paid=4900, amount_remaining=0)
    deliver(stripe_standin, post_webhook, "invoice.paid", invoice["id"])

    overdue_since = datetime.fromtimestamp(failed["created"], tz=UTC).isoformat()
    assert [(t, d) for t, d in told(org) if t == "org.payment_status_changed"] == [
        (
            "org.payment_status_changed",
            {"payment_status": "past_due", "previous_payment_status": "ok", "overdue_since": overdue_since},
        ),
        (
            "org.payment_status_changed",
            {"payment_status": "ok", "previous_payment_status": "past_due", "overdue_since": None},
        ),
    ]


def test_a_plan_change_is_told(org, customer, stripe_standin, stripe_catalog, post_webhook, blue_listens):
    subscription = subscribe(stripe_standin, org, stripe_catalog["team"])

    deliver(stripe_standin, post_webhook, "customer.subscription.created", subscription["id"])

    assert told(org) == [("org.plan_changed", {"plan": "team", "previous_plan": "free"})]


def test_soft_delete_and_restore_are_told(org, blue_listens):
    soft_delete_organization(org=org, actor=STAFF, reason="asked")
    restore_organization(org=org, actor=STAFF, reason="asked again")

    (deleted, deleted_data), (restored, restored_data) = told(org)
    assert (deleted, restored) == ("org.deleted", "org.restored")
    assert deleted_data["deleted_at"] and restored_data == {"deleted_at": None}
