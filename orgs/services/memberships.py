"""The one write path for memberships: API, admin, commands and tasks all come through here.

Every write locks the org row first, so the seat rule and the last-owner rule, which read counts
that a concurrent write could change, hold under concurrency.
"""

from django.db import transaction
from django.utils import timezone

from orgs.exceptions import LastOwner, NotAMember, SeatLimitReached
from orgs.models import ROLE_RANK, AuditCategory, Membership, Organization, Role
from orgs.selectors import other_owner_exists, seat_limit, seats_in_use
from orgs.services.audit import Actor, record_audit


def lock_org(org: Organization) -> Organization:
    """Lock the org row for the rest of the transaction; returns the fresh row."""
    # Serializes membership writes per org: without it two concurrent adds could both see a
    # free seat, or two demotions could both see another owner.
    return Organization.objects.select_for_update().get(pk=org.pk)


def ensure_free_seat(org: Organization, *, now, excluding_invitation=None) -> None:
    """Raise SeatLimitReached unless one more seat fits. Call with the org row locked."""
    limit = seat_limit(org)
    if limit is None:
        return
    used = seats_in_use(org, now=now, excluding_invitation=excluding_invitation)
    if used + 1 > limit:
        raise SeatLimitReached(details={"seat_limit": limit, "seats_in_use": used})


def membership_snapshot(membership: Membership) -> dict:
    return {"user_id": membership.user_id, "role": membership.role, "email": membership.email}


def upsert_membership(
    *, org: Organization, user_id: str, role: Role, email: str | None = None, actor: Actor
) -> tuple[Membership, bool]:
    """Create or update (org, user_id) in one transaction; idempotent, returns (membership, created).

    `email=None` leaves the stored email as it is.
    """
    with transaction.atomic():
        org = lock_org(org)
        membership = Membership.objects.filter(org=org, user_id=user_id).first()
        if membership is None:
            ensure_free_seat(org, now=timezone.now())
            membership = Membership.objects.create(
                org=org,
                user_id=user_id,
                role=role,
                email=email or "",
                joined_at=timezone.now(),
                product=actor.product,
            )
            record_audit(
                actor=actor,
                action="membership.created",
                category=AuditCategory.MEMBERSHIP,
                org=org,
                after=membership_snapshot(membership),
            )
            return membership, True

        before = membership_snapshot(membership)
        if membership.role == Role.OWNER and role != Role.OWNER and not other_owner_exists(org, membership):
            raise LastOwner(details={"user_id": user_id})
        membership.role = role
        if email is not None:
            membership.email = email
        if membership_snapshot(membership) != before:
            membership.product = actor.product or membership.product
            membership.save()
            record_audit(
                actor=actor,
                action="membership.updated",
                category=AuditCategory.MEMBERSHIP,
                org=org,
                before=before,
                after=membership_snapshot(membership),
            )
        return membership, False


def remove_membership(*, org: Organization, user_id: str, actor: Actor, reason: str = "") -> None:
    """Remove (org, user_id) in one transaction; NotAMember when absent, LastOwner for the last owner."""
    with transaction.atomic():
        org = lock_org(org)
        membership = Membership.objects.filter(org=org, user_id=user_id).first()
        if membership is None:
            raise NotAMember(details={"org_id": org.public_id, "user_id": user_id})
        if membership.role == Role.OWNER and not other_owner_exists(org, membership):
            raise LastOwner(details={"user_id": user_id})
        before = membership_snapshot(membership)
        membership.delete()
        record_audit(
            actor=actor,
            action="membership.removed",
            category=AuditCategory.MEMBERSHIP,
            org=org,
            before=before,
            reason=reason,
        )


def higher_role(a: str, b: str) -> str:
    return a if ROLE_RANK[Role(a)] >= ROLE_RANK[Role(b)] else b
