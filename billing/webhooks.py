"""The Stripe webhook endpoint: verify the delivery, store the event once, answer 200.

Stripe's guidance is to answer 2xx before any complex logic, so the request does only what makes
the delivery durable: the signature is checked against the endpoint's secret (dj-stripe's
WebhookEndpoint row; the `x-djstripe-webhook-secret` header dj-stripe honours in DEBUG is never
read here), the event is stored once (billing.services.stripe_events) and the answer is 200.
dj-stripe's sync and the receivers run in a task after the commit. A rejected delivery (no or a
bad signature, an unknown endpoint, a body that is no Stripe event) gets a 4xx, counted per source and
minute (RejectedWebhookTally) with one `security` audit entry each, so posts cannot flood the log.
"""

import logging

import stripe
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseNotFound
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from djstripe.enums import WebhookEndpointValidation
from djstripe.models import WebhookEndpoint

from billing.services.stripe_events import store_stripe_event
from billing.services.webhook_rejections import tally_rejected_webhook
from core.api.bodies import load_json
from core.errors import InvalidRequest
from core.requests import client_ip

logger = logging.getLogger(__name__)


def _reject(request: HttpRequest, uuid: object, reason: str, response: HttpResponse) -> HttpResponse:
    ip = client_ip(request)
    logger.warning("Rejected a Stripe webhook delivery to %s from %s: %s", uuid, ip, reason)
    claimed = request.body[:2000].decode("utf-8", "replace").replace("\x00", "\ufffd")
    tally_rejected_webhook(source=ip, endpoint=str(uuid), reason=reason, body_start=claimed)
    return response


@method_decorator(csrf_exempt, name="dispatch")
class StripeWebhookView(View):
    http_method_names = ["post"]

    def post(self, request: HttpRequest, uuid: object) -> HttpResponse:
        signature = request.headers.get("stripe-signature")
        if not signature:
            return _reject(request, uuid, "missing Stripe-Signature header", HttpResponseBadRequest())
        endpoint = (
            WebhookEndpoint.objects.filter(djstripe_uuid=uuid)
            .only("secret", "djstripe_tolerance", "djstripe_validation_method")
            .first()
        )
        if endpoint is None:
            return _reject(request, uuid, "unknown webhook endpoint", HttpResponseNotFound())
        if endpoint.djstripe_validation_method != WebhookEndpointValidation.verify_signature:
            return _reject(request, uuid, "the endpoint does not verify signatures", HttpResponseBadRequest())
        try:
            stripe.WebhookSignature.verify_header(
                request.body, signature, endpoint.secret, endpoint.djstripe_tolerance
            )
        except (stripe.SignatureVerificationError, ValueError):
            return _reject(request, uuid, "invalid signature", HttpResponseBadRequest())
        try:
            # The API's one JSON reader (depth, NUL, lone surrogates); Stripe's floats stay floats.
            payload = load_json(request.body, parse_float=float)
        except InvalidRequest:
            return _reject(request, uuid, "a signed body that is no safe JSON", HttpResponseBadRequest())
        if not _is_event(payload):
            return _reject(request, uuid, "not a Stripe event", HttpResponseBadRequest())
        store_stripe_event(payload=payload)
        return HttpResponse(status=200)


def _is_event(payload: object) -> bool:
    return (
        isinstance(payload, dict)
        and payload.get("object") == "event"
        and isinstance(payload.get("id"), str)
        and bool(payload["id"])
        and isinstance(payload.get("type"), str)
        and isinstance((payload.get("data") or {}).get("object"), dict)
    )
