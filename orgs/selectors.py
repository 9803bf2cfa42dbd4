"""Reads for organizations, memberships and invitations."""

from datetime import datetime

from django.db.models import QuerySet
from django.http import HttpRequest

from core.registries import seat_limits
from orgs.exceptions import NotAMember, OrgNotFound
from orgs.models import EventDelivery, EventEndpoint, Invitation, Membership, Organization, Product, Role


def get_live_org(public_id: str) -> Organization:
    """The live org with this public id, or OrgNotFound (soft-deleted orgs do not exist here)."""
    org = Organization.live.filter(public_id=public_id).first()
    if org is None:
        raise OrgNotFound(details={"org_id": public_id})
    return org


def get_membership(org: Organization, user_id: str) -> Membership:
    membership = Membership.objects.filter(org=org, user_id=user_id).first()
    if membership is None:
        raise NotAMember(details={"org_id": org.public_id, "user_id": user_id})
    return membership


def list_memberships(org: Organization) -> QuerySet[Membership]:
    return Membership.objects.filter(org=org).order_by("id")


def pending_invitations(org: Organization, *, now: datetime) -> QuerySet[Invitation]:
    return Invitation.objects.filter(
        org=org,
        accepted_at__isnull=True,
        revoked_at__isnull=True,
        expired_at__isnull=True,
        expires_at__gt=now,
    )


def seats_in_use(org: Organization, *, now: datetime, excluding_invitation: Invitation | None = None) -> int:
    """Members plus pending invitations: both count against the plan's seat limit."""
    invitations = pending_invitations(org, now=now)
    if excluding_invitation is not None:
        invitations = invitations.exclude(pk=excluding_invitation.pk)
    return Membership.objects.filter(org=org).count() + invitations.count()


def seat_limit(org: Organization) -> int | None:
    """The seat limit of the org's plan; None means unlimited. The plan lives in billing, which
    provides the answer (core.registries.seat_limits)."""
    return seat_limits.get()(org.pk)


def other_owner_exists(org: Organization, membership: Membership) -> bool:
    return Membership.objects.filter(org=org, role=Role.OWNER).exclude(pk=membership.pk).exists()


def org_for_request(request: HttpRequest) -> Organization | None:
    """dj-stripe's subscriber callback: the org named in the request path, if any."""
    match = getattr(request, "resolver_match", None)
    public_id = match.kwargs.get("org_id") if match else None
    return Organization.live.filter(public_id=public_id).first() if public_id else None


def product_endpoints(product: Product) -> QuerySet[EventEndpoint]:
    """The product's event endpoints that are not deleted, newest first."""
    return EventEndpoint.objects.filter(product=product, deleted_at__isnull=True).order_by("-id")


def product_deliveries(
    product: Product, *, endpoint: EventEndpoint | None = None, event_type: str | None = None
) -> QuerySet[EventDelivery]:
    """Deliveries to the product's endpoints that are not deleted (newest first by the paginator)."""
    deliveries = EventDelivery.objects.select_related("event", "endpoint").filter(
        endpoint__product=product, endpoint__deleted_at__isnull=True
    )
    if endpoint is not None:
        deliveries = deliveries.filter(endpoint=endpoint)
    if event_type is not None:
        deliveries = deliveries.filter(event__event_type=event_type)
    return deliveries
