"""Pytest fixtures for the Stripe stand-in. Load them as a plugin (`pytest_plugins` in the root
conftest) or import them into a test module: `from tests.stripe_standin.fixtures import *  # noqa`.
"""

import json
from datetime import UTC, datetime

import pytest
import stripe

from tests.stripe_standin import objects
from tests.stripe_standin.server import StripeStandin, sign_webhook

# A test-mode key in the shape dj-stripe accepts (`sk_test_` and 24+ alphanumerics): dj-stripe
# refuses shorter keys such as `sk_test_standin` before it ever calls Stripe.
STANDIN_API_KEY = "sk_test_51StandinStandinStandin0000000000"

WEBHOOK_SECRET = "whsec_standin_test_secret"

__all__ = [
    "STANDIN_API_KEY",
    "WEBHOOK_SECRET",
    "djstripe_account",
    "djstripe_webhook_endpoint",
    "post_webhook",
    "stripe_standin",
    "stripe_standin_server",
]


@pytest.fixture(scope="session")
def stripe_standin_server():
    """The stand-in's server, started once per test session on 127.0.0.1 and a free port."""
    server = StripeStandin().start()
    yield server
    server.stop()


@pytest.fixture
def stripe_standin(stripe_standin_server):
    """The stand-in, emptied, with the stripe library pointed at it for this test.

    Sets `stripe.api_base` (and `stripe.api_key` when empty) and restores both afterwards. Fails the
    test if the stand-in itself crashed while answering (a bug here, not in the code under test).
    """
    server = stripe_standin_server
    server.reset()
    saved = stripe.api_base, stripe.api_key
    stripe.api_base = server.url
    if not stripe.api_key:
        stripe.api_key = STANDIN_API_KEY
    try:
        yield server
    finally:
        stripe.api_base, stripe.api_key = saved
    assert not server.internal_errors, "the Stripe stand-in crashed:\n" + "\n".join(server.internal_errors)


@pytest.fixture
def djstripe_account(stripe_standin, settings, db):
    """dj-stripe's `Account` and `APIKey` rows for the stand-in's account.

    With them dj-stripe never calls `GET /v1/account` (without them it calls it twice on the first
    webhook, and stores the rows itself). Also sets STRIPE_TEST_SECRET_KEY to a key dj-stripe accepts.
    """
    from djstripe.enums import APIKeyType
    from djstripe.models import Account, APIKey

    settings.STRIPE_TEST_SECRET_KEY = STANDIN_API_KEY
    data = stripe_standin.account
    account = Account.objects.create(
        id=data["id"],
        livemode=False,
        created=datetime.fromtimestamp(data["created"], tz=UTC),
        metadata={},
        stripe_data=data,
    )
    APIKey.objects.create(
        secret=STANDIN_API_KEY,
        type=APIKeyType.secret,
        livemode=False,
        name="Stripe stand-in",
        djstripe_owner_account=account,
    )
    return account


@pytest.fixture
def djstripe_webhook_endpoint(djstripe_account):
    """A dj-stripe `WebhookEndpoint` row signing with WEBHOOK_SECRET (signature validation)."""
    from djstripe.models import WebhookEndpoint

    return WebhookEndpoint.objects.create(
        id=objects.new_id("we"),
        url="https://billing.example/stripe/webhook/",
        enabled_events=["*"],
        status="enabled",
        api_version=objects.API_VERSION,
        secret=WEBHOOK_SECRET,
        livemode=False,
        djstripe_owner_account=djstripe_account,
    )


@pytest.fixture
def post_webhook(client, djstripe_webhook_endpoint, django_capture_on_commit_callbacks):
    """`post_webhook(event)` delivers `event` (a dict) to the project's webhook view, signed, and
    lets the processing that follows the acknowledgement run (the task, in process, as it runs
    after the commit: inside a test's transaction nothing commits, so the callbacks are run here).

    `secret`/`timestamp` change the signature, `signature` replaces the header outright.
    """
    url = f"/stripe/webhook/{djstripe_webhook_endpoint.djstripe_uuid}/"

    def post(event: dict, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None, signature=None):
        body = json.dumps(event)
        headers = sign_webhook(body, secret, timestamp)
        if signature is not None:
            headers["Stripe-Signature"] = signature
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(url, data=body, content_type="application/json", headers=headers)

    return post
