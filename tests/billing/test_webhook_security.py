import json
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from djstripe.models import Event

from billing.models import RejectedWebhookTally
from billing.services.webhook_rejections import tally_rejected_webhook
from orgs.models import AuditEntry
from tests.concurrency import committing, run_concurrently
from tests.stripe_standin.fixtures import WEBHOOK_SECRET
from tests.stripe_standin.server import sign_webhook

pytestmark = pytest.mark.django_db


@pytest.fixture
def event(stripe_standin, customer, stripe_catalog):
    invoice = stripe_standin.add_invoice(customer, lines=[(stripe_catalog["pro"].stripe_price_id, 4900)])
    return stripe_standin.event("invoice.payment_failed", invoice["id"])


def rejected():
    return list(AuditEntry.objects.filter(category="security", action="webhook.rejected"))


def test_a_bad_signature_is_400_with_a_security_entry_and_nothing_processed(post_webhook, event):
    response = post_webhook(event, secret="whsec_not_the_secret")

    assert response.status_code == 400
    assert not Event.objects.exists()
    (entry,) = rejected()
    assert (entry.reason, entry.org) == ("invalid signature", None)
    assert entry.after["ip"] == "127.0.0.1" and event["id"] in entry.after["body_start"]


def test_a_stale_signature_is_rejected(post_webhook, event):
    response = post_webhook(event, timestamp=int(time.time()) - 3600)

    assert response.status_code == 400
    assert len(rejected()) == 1


def test_a_missing_signature_is_rejected(client, djstripe_webhook_endpoint, event):
    response = client.post(
        f"/stripe/webhook/{djstripe_webhook_endpoint.djstripe_uuid}/",
        json.dumps(event),
        content_type="application/json",
    )

    assert response.status_code == 400
    assert [e.reason for e in rejected()] == ["missing Stripe-Signature header"]


def test_an_unknown_endpoint_is_rejected(client, event):
    body = json.dumps(event)

    response = client.post(
        "/stripe/webhook/00000000-0000-0000-0000-000000000000/",
        body,
        content_type="application/json",
        headers=sign_webhook(body, WEBHOOK_SECRET),
    )

    assert response.status_code == 404
    assert [e.reason for e in rejected()] == ["unknown webhook endpoint"]


def test_the_djstripe_secret_header_is_never_honoured(client, djstripe_webhook_endpoint, event, settings):
    settings.DEBUG = True  # dj-stripe honours the header in DEBUG: the wrapper drops it first
    body = json.dumps(event)
    forged = {**sign_webhook(body, "whsec_attacker"), "X-Djstripe-Webhook-Secret": "whsec_attacker"}

    response = client.post(
        f"/stripe/webhook/{djstripe_webhook_endpoint.djstripe_uuid}/",
        body,
        content_type="application/json",
        headers=forged,
    )

    assert response.status_code == 400
    assert not Event.objects.exists()
    assert [e.reason for e in rejected()] == ["invalid signature"]


def test_an_endpoint_that_skips_validation_is_refused(post_webhook, djstripe_webhook_endpoint, event):
    djstripe_webhook_endpoint.djstripe_validation_method = "none"
    djstripe_webhook_endpoint.save()

    assert post_webhook(event).status_code == 400
    assert not Event.objects.exists()
    assert [e.reason for e in rejected()] == ["the endpoint does not verify signatures"]


def test_a_good_delivery_leaves_no_security_entry(post_webhook, event):
    assert post_webhook(event).status_code == 200
    assert not rejected()


def test_add_local_webhook_endpoint_registers_a_working_endpoint(
    client, djstripe_account, event, capsys, django_capture_on_commit_callbacks
):
    call_command("add_local_webhook_endpoint", "--secret", "whsec_local")
    path = capsys.readouterr().out.splitlines()[-1]
    body = json.dumps(event)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            path, body, content_type="application/json", headers=sign_webhook(body, "whsec_local")
        )

    assert path.startswith("/stripe/webhook/") and path.endswith("/")
    assert response.status_code == 200
    assert Event.objects.filter(id=event["id"]).exists()


def test_a_flood_of_bad_posts_is_one_counted_row_and_one_audit_entry_per_source_and_minute(
    client, djstripe_webhook_endpoint, time_machine
):
    url = f"/stripe/webhook/{djstripe_webhook_endpoint.djstripe_uuid}/"
    for n in range(30):
        client.post(
            url, data="{}", content_type="application/json", headers={"Stripe-Signature": f"t=1,v1={n}"}
        )
    for _ in range(5):
        client.post(url, data="{}", content_type="application/json", REMOTE_ADDR="198.51.100.7")
    time_machine.move_to(timezone.now() + timedelta(minutes=1), tick=False)
    client.post(url, data="{}", content_type="application/json")

    tallies = sorted(RejectedWebhookTally.objects.values_list("source", "count", "last_reason"))
    assert tallies == [
        ("127.0.0.1", 1, "missing Stripe-Signature header"),
        ("127.0.0.1", 30, "invalid signature"),
        ("198.51.100.7", 5, "missing Stripe-Signature header"),
    ]
    assert len(rejected()) == 3  # one per source and minute, however many posts


@committing
def test_concurrent_bad_posts_from_one_source_are_each_counted_once():
    tallies = run_concurrently(
        lambda _: tally_rejected_webhook(source="203.0.113.9", endpoint="e", reason="r", body_start=""),
        clients=8,
    )

    assert len(tallies) == 8
    assert RejectedWebhookTally.objects.get(source="203.0.113.9").count == 8
    assert len(rejected()) == 1
