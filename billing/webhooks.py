"""dj-stripe's webhook view, guarded: rejected deliveries leave a security audit entry, and the
`x-djstripe-webhook-secret` header (which dj-stripe honours in DEBUG) never chooses the secret."""

import logging

from django.http import HttpResponseBadRequest, HttpResponseNotFound
from djstripe.enums import WebhookEndpointValidation
from djstripe.models import WebhookEndpoint
from djstripe.views import ProcessWebhookView

from core.requests import client_ip
from orgs.models import AuditCategory
from orgs.services.audit import Actor, record_audit

logger = logging.getLogger(__name__)


def _reject(request, uuid, reason: str, response):
    try:
        claimed = request.body[:2000].decode("utf-8", "replace")
    except Exception:
        claimed = ""
    record_audit(
        actor=Actor.stripe(),
        action="webhook.rejected",
        category=AuditCategory.SECURITY,
        reason=reason,
        after={"endpoint": str(uuid), "ip": client_ip(request), "body_start": claimed[:500]},
    )
    logger.warning("Rejected a Stripe webhook delivery to %s: %s", uuid, reason)
    return response


class GuardedWebhookView(ProcessWebhookView):
    def post(self, request, uuid):
        request.META.pop("HTTP_X_DJSTRIPE_WEBHOOK_SECRET", None)
        request.__dict__.pop("headers", None)  # a cached view of the headers could still hold it
        if "stripe-signature" not in request.headers:
            return _reject(request, uuid, "missing Stripe-Signature header", HttpResponseBadRequest())
        endpoint = WebhookEndpoint.objects.filter(djstripe_uuid=uuid).first()
        if endpoint is None:
            return _reject(request, uuid, "unknown webhook endpoint", HttpResponseNotFound())
        if endpoint.djstripe_validation_method != WebhookEndpointValidation.verify_signature:
            return _reject(request, uuid, "the endpoint does not verify signatures", HttpResponseBadRequest())
        response = super().post(request, uuid)
        if response.status_code == 400:
            return _reject(request, uuid, "invalid signature", response)
        return response
