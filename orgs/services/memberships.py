"""The one write path for memberships: API, admin, commands and tasks all come through here.

Every write locks the org row first, so the seat rule and the last-owner rule, which read counts
that a concurrent write could change, hold under concurrency.
"""

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from core.errors import ServiceError
from orgs.exceptions import LastOwner, NotAMember, SeatLimitReached
from orgs.models import (
    ROLE_RANK,
    AuditCategory,
    EventType,
    Invitation,
    Membership,
    Organization,
    Product,
    Role,
)
from orgs.selectors import other_owner_exists, seat_limit, seats_in_use
from orgs.services.audit import Actor, record_audit
from orgs.services.events import emit_event


def lock_org(org: Organization) -> Organization:
    """Lock the org row for the rest of the transaction; returns the fresh row."""
    # Serializes membership writes per org: without it two concurrent adds could both see a
    # free seat, or two demotions could both see another owner.
    return Organization.objects.select_for_update().get(pk=org.pk)


def ensure_free_seat(
    org: Organization, *, now: datetime, excluding_invitation: Invitation | None = None
) -> None:
    """Raise SeatLimitReached unless one more seat fits. Call with the org row locked."""
    limit = seat_limit(org)
    if limit is None:
        return
    used = seats_in_use(org, now=now, excluding_invitation=excluding_invitation)
    if used + 1 > limit:
        raise SeatLimitReached(details={"seat_limit": limit, "seats_in_use": used})


def membership_snapshot(membership: Membership) -> dict[str, Any]:
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
            return _create(
                org, user_id=user_id, role=role, email=email or "", product=actor.product, actor=actor
            ), True

        before = membership_snapshot(membership)
        if membership.role == Role.OWNER and role != Role.OWNER and not other_owner_exists(org, membership):
            raise LastOwner(details={"user_id": user_id})
        membership.role = role
        if email is not None:
            membership.email = email
        _save_if_changed(membership, before, actor=actor)
        return membership, False


def join_by_invitation(
    *, invitation: Invitation, user_id: str, email: str | None, actor: Actor, now: datetime
) -> tuple[Membership, bool]:
    """The membership an accepted invitation makes: created in the seat the invitation held, or, for
    an existing member, the higher of the two roles (and the email if none was kept); returns
    (membership, created). Call in the acceptance's transaction, with the org locked (lock_org)."""
    org = invitation.org
    reason = f"Accepted invitation {invitation.public_id}."
    membership = Membership.objects.filter(org=org, user_id=user_id).first()
    if membership is None:
        # The invitation already holds a seat; it turns into the member's.
        ensure_free_seat(org, now=now, excluding_invitation=invitation)
        product = actor.product or invitation.product
        email = email or invitation.email
        return _create(
            org,
            user_id=user_id,
            role=invitation.role,
            email=email,
            product=product,
            actor=actor,
            reason=reason,
        ), True
    before = membership_snapshot(membership)
    membership.role = higher_role(membership.role, invitation.role)
    membership.email = membership.email or email or invitation.email
    _save_if_changed(membership, before, actor=actor, reason=reason, keep_product=True)
    return membership, False


def _create(
    org: Organization,
    *,
    user_id: str,
    role: str,
    email: str,
    product: Product | None,
    actor: Actor,
    reason: str = "",
) -> Membership:
    membership = Membership.objects.create(
        org=org, user_id=user_id, role=role, email=email, joined_at=timezone.now(), product=product
    )
    record_audit(
        actor=actor,
        action="membership.created",
        category=AuditCategory.MEMBERSHIP,
        org=org,
        after=membership_snapshot(membership),
        reason=reason,
    )
    _emit_upserted(membership, created=True, previous_role=None)
    return membership


def _save_if_changed(
    membership: Membership,
    before: dict[str, str],
    *,
    actor: Actor,
    reason: str = "",
    keep_product: bool = False,
) -> None:
    if membership_snapshot(membership) == before:
        return
    if not keep_product:
        membership.product = actor.product or membership.product
    membership.save()
    record_audit(
        actor=actor,
        action="membership.updated",
        category=AuditCategory.MEMBERSHIP,
        org=membership.org,
        before=before,
        after=membership_snapshot(membership),
        reason=reason,
    )
    _emit_upserted(membership, created=False, previous_role=before["role"])


def _emit_upserted(membership: Membership, *, created: bool, previous_role: str | None) -> None:
    emit_event(
        org_id=membership.org_id,
        event_type=EventType.MEMBER_UPSERTED,
        data={
            "user_id": membership.user_id,
            "role": membership.role,
            "previous_role": previous_role,
            "email": membership.email or None,
            "created": created,
        },
    )


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
        emit_event(
            org_id=org.pk,
            event_type=EventType.MEMBER_REMOVED,
            data={"user_id": before["user_id"], "role": before["role"]},
        )


def higher_role(a: str, b: str) -> str:
    return a if ROLE_RANK[Role(a)] >= ROLE_RANK[Role(b)] else b


def _import_row_problem(row: dict[str, str]) -> str | None:
    if not row.get("user_id") or len(row["user_id"]) > 128:
        return "invalid_user_id"
    if row.get("role") not in Role.values:
        return "invalid_role"
    if row.get("email"):
        try:
            validate_email(row["email"])
        except ValidationError:
            return "invalid_email"
    return None


def import_memberships(*, rows: Iterable[dict[str, str]], actor: Actor) -> dict[str, Any]:
    """Upsert each row ({org_id, user_id, role, email}) through upsert_membership; idempotent.

    Each row is its own transaction: a rejected row (with its reason) never stops the others.
    Returns counts of created, updated, unchanged and rejected rows, and the rejections.
    """
    counts = {"created": 0, "updated": 0, "unchanged": 0, "rejected": 0}
    rejections: list[dict[str, Any]] = []
    orgs: dict[str, Organization | None] = {}
    for number, row in enumerate(rows, start=1):
        org_id = row.get("org_id", "")
        reason = _import_row_problem(row)
        if reason is None and org_id not in orgs:
            orgs[org_id] = Organization.live.filter(public_id=org_id).first()
        org = orgs.get(org_id)
        if reason is None and org is None:
            reason = "org_not_found"
        if reason is None and org is not None:
            before = Membership.objects.filter(org=org, user_id=row["user_id"]).first()
            try:
                membership, created = upsert_membership(
                    org=org,
                    user_id=row["user_id"],
                    role=Role(row["role"]),
                    email=row.get("email") or None,
                    actor=actor,
                )
            except ServiceError as error:
                reason = error.code
        if reason is not None:
            counts["rejected"] += 1
            rejections.append(
                {"row": number, "org_id": org_id, "user_id": row.get("user_id"), "reason": reason}
            )
        elif created:
            counts["created"] += 1
        elif before is not None and membership_snapshot(before) == membership_snapshot(membership):
            counts["unchanged"] += 1
        else:
            counts["updated"] += 1
    return {**counts, "rejections": rejections}
