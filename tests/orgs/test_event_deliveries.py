"""Events to products, delivered: signed (verified with the standardwebhooks library), retried after
a receiver's 500s, never sent for a rolled-back change, ordered by sequence, disabled after three
days of failures; the deliveries API."""

import socket
from datetime import timedelta

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from orgs.models import (
    AuditEntry,
    DeliveryAttempt,
    DeliveryStatus,
    EventDelivery,
    EventEndpoint,
    OutgoingEvent,
    Role,
)
from orgs.services.audit import Actor
from orgs.services.event_delivery import deliver_due_events, deliver_event
from orgs.services.event_endpoints import create_endpoint, rotate_secret
from orgs.services.memberships import remove_membership, upsert_membership
from tests.concurrency import committing, run_concurrently
from tests.conftest import MEMBER, set_plan
from tests.factories import OrganizationFactory

pytestmark = pytest.mark.django_db

MEMBER_EVENTS = ["member.upserted", "member.removed"]


def endpoint_of(product, receiver, types=MEMBER_EVENTS) -> EventEndpoint:
    return create_endpoint(
        product=product, url=receiver.url, event_types=types, actor=Actor.for_product(product)
    )


def as_product(product):
    return Actor.for_product(product)


def test_a_delivery_is_signed_per_standard_webhooks(
    api, org, product, receiver, django_capture_on_commit_callbacks
):
    secret = api.post(
        "/api/v1/event-endpoints", {"url": receiver.url, "event_types": MEMBER_EVENTS}, format="json"
    ).json()["secret"]

    with django_capture_on_commit_callbacks(execute=True):
        api.post(
            f"/api/v1/orgs/{org.public_id}/members:upsert", {"user_id": "u-1", "role": "admin"}, format="json"
        )

    (delivered,) = receiver.received
    payload = Webhook(secret).verify(delivered.body, delivered.headers)  # the ready library verifies it
    event = OutgoingEvent.objects.get()
    assert payload == {
        "id": event.public_id,
        "type": "member.upserted",
        "created_at": payload["created_at"],
        "org_id": org.public_id,
        "sequence": event.sequence,
        "data": {"user_id": "u-1", "role": "admin", "previous_role": None, "email": None, "created": True},
    }
    assert delivered.headers["webhook-id"] == event.public_id
    assert delivered.headers["webhook-signature"].startswith("v1,")
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 32).verify(delivered.body, delivered.headers)
    delivery = EventDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
        DeliveryStatus.DELIVERED,
        1,
        200,
    )


def test_during_a_rotation_both_secrets_verify_and_then_only_the_new_one(org, product, receiver):
    set_plan(org, "team")  # seats for everyone
    endpoint = endpoint_of(product, receiver)
    old = endpoint.secret
    new = rotate_secret(product=product, endpoint_id=endpoint.public_id, actor=as_product(product)).secret

    upsert_membership(org=org, user_id="u-1", role=Role.MEMBER, actor=as_product(product))
    deliver_due_events()
    (during,) = receiver.received
    for secret in (old, new):
        Webhook(secret).verify(during.body, during.headers)
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        upsert_membership(org=org, user_id="u-2", role=Role.MEMBER, actor=as_product(product))
        deliver_due_events()
        after = receiver.received[1]
        Webhook(new).verify(after.body, after.headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(old).verify(after.body, after.headers)


def test_a_receivers_500s_are_retried_with_backoff_and_every_attempt_is_logged(org, product, receiver):
    endpoint_of(product, receiver)
    receiver.answers = [500, 503]
    upsert_membership(org=org, user_id="u-1", role=Role.MEMBER, actor=as_product(product))
    delivery = EventDelivery.objects.get()

    assert deliver_event(delivery_id=delivery.pk) == "retry"
    assert deliver_due_events()["sent"] == 0  # not due yet: 30 s of backoff
    with time_machine.travel(timezone.now() + timedelta(seconds=31)):
        assert deliver_due_events()["sent"] == 1  # the second attempt meets the 503
    with time_machine.travel(timezone.now() + timedelta(seconds=92)):
        assert deliver_due_events()["sent"] == 1

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
        DeliveryStatus.DELIVERED,
        3,
        200,
    )
    attempts = list(DeliveryAttempt.objects.filter(delivery=delivery).order_by("attempted_at"))
    assert [a.status_code for a in attempts] == [500, 503, 200]
    assert (
        attempts[0].response_excerpt.startswith("upstream trouble")
        and len(attempts[0].response_excerpt) == 500
    )
    assert all(a.latency_ms >= 0 for a in attempts)
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1  # the same message each time
    assert len({r.body for r in receiver.received}) == 1


def test_an_unreachable_receiver_is_an_attempt_with_its_error(org, product, receiver):
    endpoint = endpoint_of(product, receiver)
    EventEndpoint.objects.filter(pk=endpoint.pk).update(url="http://127.0.0.1:9/hooks")  # nobody listens
    upsert_membership(org=org, user_id="u-1", role=Role.MEMBER, actor=as_product(product))

    assert deliver_due_events()["sent"] == 1

    attempt = DeliveryAttempt.objects.get()
    assert attempt.status_code is None and "Error" in attempt.error
    assert EventDelivery.objects.get().status == DeliveryStatus.PENDING


def test_delivering_twice_sends_once(org, product, receiver):
    endpoint_of(product, receiver)
    upsert_membership(org=org, user_id="u-1", role=Role.MEMBER, actor=as_product(product))
    delivery = EventDelivery.objects.get()

    assert [deliver_event(delivery_id=delivery.pk) for _ in range(2)] == ["delivered", "skipped"]
    assert len(receiver.received) == 1


def test_events_carry_an_increasing_sequence_and_arrive_in_order(org, product, receiver):
    endpoint_of(product, receiver)
    actor = as_product(product)
    upsert_membership(org=org, user_id="u-1", role=Role.MEMBER, actor=actor)
    upsert_membership(org=org, user_id="u-1", role=Role.ADMIN, actor=actor)
    upsert_membership(org=org, user_id="u-1", role=Role.ADMIN, actor=actor)  # unchanged: no event
    remove_membership(org=org, user_id="u-1", actor=actor)

    deliver_due_events()

    events = receiver.events()
    assert [(e["type"], e["data"]["role"]) for e in events] == [
        ("member.upserted", "member"),
        ("member.upserted", "admin"),
        ("member.removed", "admin"),
    ]
    sequences = [e["sequence"] for e in events]
    assert sequences == sorted(sequences) and len(set(sequences)) == 3


def test_member_events_go_only_to_products_that_called_about_the_org(org, product, other_product, receiver):
    endpoint_of(product, receiver)
    endpoint_of(other_product, receiver)  # blue never wrote about this org

    upsert_membership(org=org, user_id="u-1", role=Role.MEMBER, actor=as_product(product))

    assert list(EventDelivery.objects.values_list("endpoint__product__slug", flat=True)) == ["red"]


def test_a_change_nobody_listens_to_writes_no_event(org, product):
    upsert_membership(org=org, user_id="u-1", role=Role.MEMBER, actor=as_product(product))

    assert not OutgoingEvent.objects.exists()


@committing
def test_a_rolled_back_change_sends_nothing(product, receiver):
    org = OrganizationFactory()
    endpoint_of(product, receiver)

    with pytest.raises(RuntimeError), transaction.atomic():
        upsert_membership(org=org, user_id="u-1", role=Role.MEMBER, actor=as_product(product))
        raise RuntimeError("the change fails after the event was written")

    assert not OutgoingEvent.objects.exists() and not EventDelivery.objects.exists()
    upsert_membership(org=org, user_id="u-2", role=Role.MEMBER, actor=as_product(product))  # committed
    assert [e["data"]["user_id"] for e in receiver.events()] == ["u-2"]  # sent right after the commit


@committing
def test_concurrent_changes_of_one_org_get_distinct_sequences_in_commit_order(product, receiver):
    org = OrganizationFactory()
    set_plan(org, "team")
    endpoint_of(product, receiver)
    upsert_membership(org=org, user_id="first", role=Role.MEMBER, actor=as_product(product))

    run_concurrently(
        lambda i: upsert_membership(org=org, user_id=f"u-{i}", role=Role.MEMBER, actor=as_product(product)), 6
    )

    events = list(OutgoingEvent.objects.filter(org=org).order_by("id"))
    assert [e.sequence for e in events] == list(range(1, 8))  # gapless, in the order they committed


@committing
def test_concurrent_workers_send_a_delivery_once(product, receiver, monkeypatch):
    org = OrganizationFactory()
    endpoint_of(product, receiver)
    monkeypatch.setattr("orgs.services.events.deliver_soon", lambda ids: None)  # the fast path lost
    upsert_membership(org=org, user_id="u-1", role=Role.MEMBER, actor=as_product(product))
    delivery = EventDelivery.objects.get()

    outcomes = run_concurrently(lambda i: deliver_event(delivery_id=delivery.pk), 4)

    assert sorted(outcomes) == ["delivered", "skipped", "skipped", "skipped"]
    assert len(receiver.received) == 1


def test_an_endpoint_failing_for_three_days_is_disabled_and_a_retry_that_works_enables_it(
    org, product, receiver
):
    set_plan(org, "team")
    endpoint = endpoint_of(product, receiver)
    receiver.answers = [500] * 200
    actor = as_product(product)
    upsert_membership(org=org, user_id="u-1", role=Role.MEMBER, actor=actor)
    start = timezone.now()
    for hours in range(0, 80, 3):
        with time_machine.travel(start + timedelta(hours=hours)):
            deliver_due_events()
            if hours == 40:
                upsert_membership(org=org, user_id=f"u-{hours}", role=Role.MEMBER, actor=actor)

    endpoint.refresh_from_db()
    assert endpoint.disabled_at is not None and "Failing since" in endpoint.disabled_reason
    assert set(EventDelivery.objects.values_list("status", flat=True)) == {DeliveryStatus.FAILED}
    assert AuditEntry.objects.filter(action="event_endpoint.disabled", product=product).count() == 1
    with time_machine.travel(start + timedelta(hours=81)):
        upsert_membership(org=org, user_id="u-late", role=Role.MEMBER, actor=actor)
    assert not EventDelivery.objects.filter(event__data__user_id="u-late").exists()  # nothing for it

    receiver.answers = []
    first = EventDelivery.objects.order_by("id").first()
    with time_machine.travel(start + timedelta(hours=82)):
        response = api_retry(product, first)
    assert response == "delivered"
    endpoint.refresh_from_db()
    assert (endpoint.disabled_at, endpoint.failing_since) == (None, None)


def api_retry(product, delivery) -> str:
    from orgs.services.event_delivery import retry_delivery

    retry_delivery(delivery=delivery, actor=as_product(product))
    return deliver_event(delivery_id=delivery.pk)


def test_a_delivery_is_given_up_three_days_after_its_event(org, product, receiver):
    endpoint_of(product, receiver)
    upsert_membership(org=org, user_id="u-1", role=Role.MEMBER, actor=as_product(product))
    receiver.answers = [500] * 200
    delivery = EventDelivery.objects.get()
    EventEndpoint.objects.update(failing_since=None)

    with time_machine.travel(timezone.now() + timedelta(days=3, minutes=1)):
        EventEndpoint.objects.update(failing_since=timezone.now())  # the endpoint failed only lately
        assert deliver_event(delivery_id=delivery.pk) == "failed"

    assert EventDelivery.objects.get().status == DeliveryStatus.FAILED


# --- the deliveries API --------------------------------------------------------------------------------


@pytest.fixture
def delivered(api, org, product, receiver, django_capture_on_commit_callbacks):
    created = api.post(
        "/api/v1/event-endpoints", {"url": receiver.url, "event_types": MEMBER_EVENTS}, format="json"
    ).json()
    with django_capture_on_commit_callbacks(execute=True):
        upsert_membership(org=org, user_id="u-1", role=Role.MEMBER, actor=as_product(product))
        remove_membership(org=org, user_id=MEMBER, actor=as_product(product))
    return created


def test_deliveries_are_listed_newest_first_and_filtered(api, delivered):
    body = api.get("/api/v1/event-deliveries").json()

    assert [d["event_type"] for d in body["results"]] == ["member.removed", "member.upserted"]
    first = body["results"][0]
    assert {
        k: first[k] for k in ("endpoint_id", "status", "attempts", "last_status_code", "next_attempt_at")
    } == {
        "endpoint_id": delivered["id"],
        "status": "delivered",
        "attempts": 1,
        "last_status_code": 200,
        "next_attempt_at": None,
    }
    assert first["id"].startswith("dlv_") and first["event_id"].startswith("ev_") and first["delivered_at"]
    only = api.get(
        "/api/v1/event-deliveries", {"event_type": "member.upserted", "endpoint_id": delivered["id"]}
    )
    assert [d["event_type"] for d in only.json()["results"]] == ["member.upserted"]


def test_an_unknown_event_type_filter_is_invalid(api, delivered):
    response = api.get("/api/v1/event-deliveries", {"event_type": "org.exploded"})

    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_request")


def test_a_delivery_is_retried_through_the_api(api, delivered, receiver, django_capture_on_commit_callbacks):
    delivery = api.get("/api/v1/event-deliveries").json()["results"][0]

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/v1/event-deliveries/{delivery['id']}:retry", {}, format="json")

    assert response.status_code == 202
    assert len(receiver.received) == 3  # the replay reached the receiver again, same message id
    assert receiver.received[-1].headers["webhook-id"] == delivery["event_id"]
    assert EventDelivery.objects.get(public_id=delivery["id"]).attempts == 2


def test_another_products_delivery_does_not_exist_for_it(other_api, delivered):
    delivery = EventDelivery.objects.first()

    response = other_api.post(f"/api/v1/event-deliveries/{delivery.public_id}:retry", {}, format="json")

    assert (response.status_code, response.json()["error"]["code"]) == (404, "delivery_not_found")
    assert other_api.get("/api/v1/event-deliveries").json()["results"] == []


def test_a_retry_refuses_a_body_field(api, delivered):
    delivery = EventDelivery.objects.first()

    response = api.post(f"/api/v1/event-deliveries/{delivery.public_id}:retry", {"now": True}, format="json")

    assert response.json()["error"]["code"] == "unknown_field"


# --- live mode at delivery: the address is checked again --------------------------------------------


def test_live_mode_refuses_to_deliver_to_a_name_that_now_resolves_to_a_private_address(
    org, product, receiver, settings, monkeypatch
):
    endpoint = endpoint_of(product, receiver)
    EventEndpoint.objects.filter(pk=endpoint.pk).update(url="https://hooks.red.example/events")
    settings.STRIPE_LIVE_MODE = True
    real = socket.getaddrinfo

    def rebound(host, port, *args, **kwargs):  # registered while public, now it points inside
        if host == "hooks.red.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebound)
    upsert_membership(org=org, user_id="u-1", role=Role.MEMBER, actor=as_product(product))

    assert deliver_due_events()["sent"] == 1

    attempt = DeliveryAttempt.objects.get()
    assert attempt.status_code is None and attempt.error.startswith("refused:")
    assert receiver.received == []
