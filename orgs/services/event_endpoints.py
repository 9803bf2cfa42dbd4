"""The endpoints a product receives events at: registered, listed, deleted, their secret rotated."""

import base64
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.errors import InvalidRequest
from core.public_urls import UnsafeUrl, check_public_url, parse_http_url
from orgs.exceptions import DeliveryNotFound, EndpointNotFound
from orgs.models import AuditCategory, DeliveryStatus, EventDelivery, EventEndpoint, EventType, Product
from orgs.services.audit import Actor, record_audit

# After a rotation the old secret keeps signing, alongside the new one, for this long.
ROTATION_OVERLAP = timedelta(hours=24)


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 24 random bytes, base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def check_endpoint_url(url: str) -> None:
    """Raise InvalidRequest naming `url` unless events may be sent there: in live mode only https to
    a host that resolves to public addresses only (the SSRF guard); otherwise any http(s) URL."""
    try:
        if settings.STRIPE_LIVE_MODE:
            check_public_url(url)
        else:
            parse_http_url(url, require_https=False)
    except UnsafeUrl as problem:
        raise InvalidRequest(details={"fields": {"url": [str(problem)]}}) from None


def _snapshot(endpoint: EventEndpoint) -> dict[str, Any]:
    return {
        "id": endpoint.public_id,
        "url": endpoint.url,
        "event_types": endpoint.event_types,
        "description": endpoint.description,
    }


def create_endpoint(
    *, product: Product, url: str, event_types: Sequence[str], description: str = "", actor: Actor
) -> EventEndpoint:
    """Register an endpoint of the product, with a new secret (shown to the product once); audited.
    Each call registers one more endpoint."""
    check_endpoint_url(url)
    unknown = sorted(set(event_types) - set(EventType.values))
    if unknown or not event_types:
        raise InvalidRequest(details={"fields": {"event_types": [f"Unknown event types: {unknown}."]}})
    with transaction.atomic():
        endpoint = EventEndpoint.objects.create(
            product=product,
            url=url,
            event_types=sorted(set(event_types), key=list(EventType.values).index),
            description=description,
            secret=new_secret(),
        )
        record_audit(
            actor=actor,
            action="event_endpoint.created",
            category=AuditCategory.PRODUCT,
            product=product,
            after=_snapshot(endpoint),
        )
    return endpoint


def product_endpoint(*, product: Product, endpoint_id: str, lock: bool = False) -> EventEndpoint:
    """The product's own live endpoint; another product's (or a deleted one) does not exist for it."""
    endpoints = EventEndpoint.objects.select_for_update() if lock else EventEndpoint.objects
    endpoint = endpoints.filter(public_id=endpoint_id, product=product, deleted_at__isnull=True).first()
    if endpoint is None:
        raise EndpointNotFound(details={"endpoint_id": endpoint_id})
    return endpoint


def delete_endpoint(*, product: Product, endpoint_id: str, actor: Actor, now: datetime | None = None) -> None:
    """Stop sending to an endpoint: it is kept (its deliveries are history) but gone for the product;
    pending deliveries end. A second delete is EndpointNotFound."""
    now = now or timezone.now()
    with transaction.atomic():
        endpoint = product_endpoint(product=product, endpoint_id=endpoint_id, lock=True)
        endpoint.deleted_at = now
        endpoint.save(update_fields=["deleted_at"])
        EventDelivery.objects.filter(endpoint=endpoint, status=DeliveryStatus.PENDING).update(
            status=DeliveryStatus.FAILED, last_error="The endpoint was deleted."
        )
        record_audit(
            actor=actor,
            action="event_endpoint.deleted",
            category=AuditCategory.PRODUCT,
            product=product,
            before=_snapshot(endpoint),
        )


def rotate_secret(
    *, product: Product, endpoint_id: str, actor: Actor, now: datetime | None = None
) -> EventEndpoint:
    """Give the endpoint a new secret; the current one keeps signing, alongside, for 24 hours (a
    second rotation within them retires the oldest at once). Audited, secrets never logged."""
    now = now or timezone.now()
    with transaction.atomic():
        endpoint = product_endpoint(product=product, endpoint_id=endpoint_id, lock=True)
        endpoint.previous_secret, endpoint.previous_secret_expires_at = (
            endpoint.secret,
            now + ROTATION_OVERLAP,
        )
        endpoint.secret = new_secret()
        endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at"])
        record_audit(
            actor=actor,
            action="event_endpoint.secret_rotated",
            category=AuditCategory.PRODUCT,
            product=product,
            after={
                "id": endpoint.public_id,
                "previous_secret_expires_at": (now + ROTATION_OVERLAP).isoformat(),
            },
        )
    return endpoint


def product_delivery(*, product: Product, delivery_id: str) -> EventDelivery:
    """The product's own delivery (to one of its endpoints not deleted), or DeliveryNotFound."""
    delivery = (
        EventDelivery.objects.select_related("event", "endpoint")
        .filter(public_id=delivery_id, endpoint__product=product, endpoint__deleted_at__isnull=True)
        .first()
    )
    if delivery is None:
        raise DeliveryNotFound(details={"delivery_id": delivery_id})
    return delivery
