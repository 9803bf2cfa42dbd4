"""Staff and events to products: deliveries with their attempts, disabled endpoints, Replay."""

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse

from orgs.models import AuditEntry, EventDelivery, EventEndpoint, Role
from orgs.services.audit import Actor
from orgs.services.event_endpoints import create_endpoint
from orgs.services.memberships import upsert_membership
from orgs.staff import BILLING_ADMIN, SUPPORT
from tests.conftest import submitted

pytestmark = pytest.mark.django_db


def staff_client(client, name, group):
    user = User.objects.create_user(name, f"{name}@staff.example", "pw", is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    client.force_login(user)
    return client


@pytest.fixture
def failed_delivery(org, product, receiver, django_capture_on_commit_callbacks):
    create_endpoint(
        product=product, url=receiver.url, event_types=["member.upserted"], actor=Actor.system("t")
    )
    receiver.answers = [500]
    with django_capture_on_commit_callbacks(execute=True):
        upsert_membership(org=org, user_id="u-1", role=Role.MEMBER, actor=Actor.for_product(product))
    return EventDelivery.objects.get()


def test_support_sees_a_delivery_and_its_attempts_but_may_not_replay(client, failed_delivery):
    support = staff_client(client, "sam", SUPPORT)

    page = support.get(reverse("admin:orgs_eventdelivery_change", args=[failed_delivery.pk]))
    replay = support.post(
        reverse("admin:orgs_eventdelivery_act", args=[failed_delivery.pk, "replay"]),
        submitted({"reason": "x"}),
    )

    assert page.status_code == 200 and "upstream trouble" in page.content.decode()
    assert replay.status_code == 403


def test_billing_admin_replays_a_delivery(
    client, failed_delivery, receiver, django_capture_on_commit_callbacks
):
    admin = staff_client(client, "bea", BILLING_ADMIN)

    with django_capture_on_commit_callbacks(execute=True):
        admin.post(
            reverse("admin:orgs_eventdelivery_act", args=[failed_delivery.pk, "replay"]),
            submitted({"reason": "receiver fixed"}),
        )

    failed_delivery.refresh_from_db()
    assert (failed_delivery.status, failed_delivery.attempts) == ("delivered", 2)
    entry = AuditEntry.objects.get(action="event_delivery.retried")
    assert (entry.actor_user.username, entry.reason) == ("bea", "receiver fixed")


def test_disabled_endpoints_are_listed(client, failed_delivery):
    from django.utils import timezone

    EventEndpoint.objects.update(disabled_at=timezone.now(), disabled_reason="Failing since yesterday.")
    support = staff_client(client, "sam", SUPPORT)

    page = support.get(reverse("admin:orgs_eventendpoint_changelist"), {"state": "disabled"})

    assert page.status_code == 200
    assert EventEndpoint.objects.get().public_id in page.content.decode()
    assert "whsec_" not in page.content.decode()
