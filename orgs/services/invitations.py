"""Invitations: create, accept (with the membership, in one transaction), revoke, resend, expire."""

import base64
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from orgs.exceptions import (
    InvitationAlreadyAccepted,
    InvitationExpired,
    InvitationNotFound,
    InvitationNotPending,
    InvitationRevoked,
    OrgNotFound,
)
from orgs.models import (
    AuditCategory,
    Invitation,
    InvitationState,
    Membership,
    Organization,
    OutboxMessage,
    Role,
)
from orgs.selectors import pending_invitations
from orgs.services.audit import Actor, record_audit
from orgs.services.memberships import ensure_free_seat, join_by_invitation, lock_org
from orgs.services.outbox import enqueue_outbox, outbox_handler

INVITATION_TTL = timedelta(days=7)


def hash_token(token: str) -> str:
    # The token carries 256 random bits, so a plain SHA-256 is enough (no slow password hash).
    return hashlib.sha256(token.encode()).hexdigest()


def token_from(nonce: str) -> str:
    """The invitation token a nonce stands for: HMAC-SHA256 of it under SECRET_KEY. The outbox
    stores only the nonce, so a reader of the database cannot accept an invitation with it."""
    digest = hmac.new(settings.SECRET_KEY.encode(), f"invitation-token:{nonce}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


def _new_token() -> tuple[str, str, str]:
    """(token, its hash, the nonce it derives from)."""
    nonce = secrets.token_urlsafe(24)
    token = token_from(nonce)
    return token, hash_token(token), nonce


def _invitation_snapshot(invitation: Invitation) -> dict[str, Any]:
    return {
        "id": invitation.public_id,
        "email": invitation.email,
        "role": invitation.role,
        "expires_at": invitation.expires_at.isoformat(),
    }


def create_invitation(*, org: Organization, email: str, role: Role, actor: Actor) -> tuple[Invitation, str]:
    """Invite `email` in one transaction; returns (invitation, token). Not idempotent.

    A pending invitation for the same email is revoked first (superseded), so one person never
    holds two seats. The token is returned once and stored only hashed.
    """
    now = timezone.now()
    with transaction.atomic():
        org = lock_org(org)
        for previous in pending_invitations(org, now=now).filter(email__iexact=email):
            _revoke(previous, actor=actor, now=now, reason="Superseded by a new invitation.")
        ensure_free_seat(org, now=now)
        token, token_hash, _ = _new_token()
        invitation = Invitation.objects.create(
            org=org,
            email=email,
            role=role,
            token_hash=token_hash,
            product=actor.product,
            expires_at=now + INVITATION_TTL,
        )
        record_audit(
            actor=actor,
            action="invitation.created",
            category=AuditCategory.INVITATION,
            org=org,
            after=_invitation_snapshot(invitation),
        )
    return invitation, token


def accept_invitation(
    *, token: str, user_id: str, email: str | None = None, actor: Actor
) -> tuple[Membership, bool]:
    """Accept and create (or raise) the membership in one transaction; returns (membership, created).

    Accepting again as the same user answers the same membership (created=False). An existing
    member keeps the higher of their role and the invitation's.
    """
    now = timezone.now()
    with transaction.atomic():
        found = Invitation.objects.filter(token_hash=hash_token(token)).only("org_id").first()
        if found is None:
            raise InvitationNotFound
        # The org row first, as for every membership write; then the invitation row.
        org = lock_org(Organization(pk=found.org_id))
        if not org.is_live:
            raise OrgNotFound
        invitation = Invitation.objects.select_for_update().get(pk=found.pk)
        state = invitation.state_at(now)
        if state == InvitationState.ACCEPTED:
            existing = Membership.objects.filter(org=org, user_id=user_id).first()
            if invitation.accepted_by == user_id and existing is not None:
                return existing, False
            raise InvitationAlreadyAccepted
        if state == InvitationState.REVOKED:
            raise InvitationRevoked
        if state == InvitationState.EXPIRED:
            raise InvitationExpired(details={"expired_at": invitation.expires_at.isoformat()})

        invitation.org = org
        membership, created = join_by_invitation(
            invitation=invitation, user_id=user_id, email=email, actor=actor, now=now
        )

        invitation.accepted_at = now
        invitation.accepted_by = user_id
        invitation.save()
        record_audit(
            actor=actor,
            action="invitation.accepted",
            category=AuditCategory.INVITATION,
            org=org,
            after={**_invitation_snapshot(invitation), "accepted_by": user_id},
        )
    return membership, created


def _revoke(invitation: Invitation, *, actor: Actor, now: datetime, reason: str) -> None:
    invitation.revoked_at = now
    invitation.save()
    record_audit(
        actor=actor,
        action="invitation.revoked",
        category=AuditCategory.INVITATION,
        org=invitation.org,
        before=_invitation_snapshot(invitation),
        reason=reason,
    )


def revoke_invitation(*, invitation: Invitation, actor: Actor, reason: str = "") -> Invitation:
    """Revoke a pending invitation in one transaction; revoking a revoked one is a no-op."""
    now = timezone.now()
    with transaction.atomic():
        lock_org(invitation.org)
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        state = invitation.state_at(now)
        if state == InvitationState.REVOKED:
            return invitation
        if state != InvitationState.PENDING:
            raise InvitationNotPending(details={"state": state})
        _revoke(invitation, actor=actor, now=now, reason=reason)
    return invitation


def resend_invitation(*, invitation: Invitation, actor: Actor) -> tuple[Invitation, str]:
    """Issue a fresh token and a fresh 7-day expiry, and email the invitee; returns (invitation, token).

    One transaction under the org lock. Not idempotent (each call issues a new token). A pending
    invitation keeps the seat it holds; an expired one holds none, so reviving it needs a free seat
    (SeatLimitReached otherwise). The old token stops working. The email goes through the outbox,
    after commit.
    """
    now = timezone.now()
    with transaction.atomic():
        org = lock_org(invitation.org)
        invitation = Invitation.objects.select_for_update().select_related("org").get(pk=invitation.pk)
        state = invitation.state_at(now)
        if state not in (InvitationState.PENDING, InvitationState.EXPIRED):
            raise InvitationNotPending(details={"state": state})
        if state == InvitationState.EXPIRED:
            # Counted under the org lock, like every seat check: a resend racing an upsert or another
            # resend on a full org must not both take the last seat.
            ensure_free_seat(org, now=now)
        before = _invitation_snapshot(invitation)
        token, invitation.token_hash, nonce = _new_token()
        invitation.expires_at = now + INVITATION_TTL
        invitation.expired_at = None
        invitation.save()
        record_audit(
            actor=actor,
            action="invitation.resent",
            category=AuditCategory.INVITATION,
            org=invitation.org,
            before=before,
            after=_invitation_snapshot(invitation),
        )
        enqueue_outbox(
            kind="email.invitation",
            payload={"invitation_id": invitation.pk, "nonce": nonce},
            idempotency_key=f"invitation-email:{invitation.public_id}:{invitation.token_hash[:16]}",
            org=invitation.org,
        )
    return invitation, token


@outbox_handler("email.invitation")
def send_invitation_email(message: OutboxMessage) -> dict[str, Any]:
    invitation = Invitation.objects.select_related("org").get(pk=message.payload["invitation_id"])
    payload = message.payload
    # Messages enqueued before nonces carried the token itself.
    token = payload["token"] if "token" in payload else token_from(payload["nonce"])
    if hash_token(token) != invitation.token_hash:
        # Resent since (a newer message carries the new token), or SECRET_KEY rotated meanwhile.
        message.payload = {"invitation_id": invitation.pk, "nonce": "[superseded]"}
        return {"skipped": "the invitation's token changed since this email was queued"}
    send_mail(
        subject=f"You are invited to join {invitation.org.name}",
        message=(
            f"You have been invited to join {invitation.org.name} as {invitation.role}.\n\n"
            f"Your invitation code: {token}\n\n"
            f"It expires at {invitation.expires_at:%Y-%m-%d %H:%M} UTC."
        ),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[invitation.email],
    )
    # The nonce was only needed for the email: keep nothing that derives the token.
    message.payload = {"invitation_id": invitation.pk, "nonce": "[sent]"}
    return {"sent_to": invitation.email}


def expire_invitations(*, now: datetime | None = None, actor: Actor | None = None) -> dict[str, int]:
    """Mark every pending invitation past its expiry as expired; never deletes. Idempotent."""
    now = now or timezone.now()
    actor = actor or Actor.system("expire_invitations")
    expired = 0
    with transaction.atomic():
        due = list(
            Invitation.objects.select_for_update(skip_locked=True)
            .filter(
                accepted_at__isnull=True,
                revoked_at__isnull=True,
                expired_at__isnull=True,
                expires_at__lte=now,
            )
            .select_related("org")
            .order_by("pk")
        )
        for invitation in due:
            invitation.expired_at = now
            invitation.save(update_fields=["expired_at"])
            record_audit(
                actor=actor,
                action="invitation.expired",
                category=AuditCategory.INVITATION,
                org=invitation.org,
                before=_invitation_snapshot(invitation),
            )
            expired += 1
    return {"expired": expired}
