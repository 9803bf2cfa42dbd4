"""Organization records: creation (called by billing's open_organization), soft delete, restore."""

import secrets
from collections.abc import Iterator
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from orgs.exceptions import SlugTaken
from orgs.models import AuditCategory, EventType, Organization
from orgs.services.audit import Actor, record_audit
from orgs.services.events import emit_event


def org_snapshot(org: Organization) -> dict[str, Any]:
    return {
        "id": org.public_id,
        "name": org.name,
        "slug": org.slug,
        "billing_email": org.billing_email,
        "personal": org.personal,
        "deleted_at": org.deleted_at.isoformat() if org.deleted_at else None,
    }


def _slug_candidates(name: str) -> Iterator[str]:
    base = slugify(name)[:48].strip("-") or "org"
    yield base
    for _ in range(20):
        yield f"{base}-{secrets.token_hex(3)}"


def create_organization(
    *,
    name: str,
    billing_email: str,
    slug: str | None = None,
    personal: bool = False,
    actor: Actor,
) -> Organization:
    """Create the org row, audited. Only billing's open_organization calls it (with the account).

    A given slug that is taken raises SlugTaken; without a slug one is derived from the name.
    """
    with transaction.atomic():
        candidates = [slug] if slug else _slug_candidates(name)
        for candidate in candidates:
            try:
                with transaction.atomic():  # a savepoint: a taken slug must not end the transaction
                    org = Organization.objects.create(
                        name=name, slug=candidate, billing_email=billing_email, personal=personal
                    )
                break
            except IntegrityError:
                # The slug is the only unique column a caller can collide on.
                if slug:
                    raise SlugTaken(details={"slug": slug}) from None
        else:
            raise SlugTaken("No free slug could be derived from this name.", details={"name": name})
        record_audit(
            actor=actor,
            action="organization.created",
            category=AuditCategory.ORGANIZATION,
            org=org,
            after=org_snapshot(org),
        )
    return org


def soft_delete_organization(*, org: Organization, actor: Actor, reason: str) -> Organization:
    """Hide the org from the API and the jobs; idempotent. Called by billing's check first."""
    return _set_deleted(org, deleted=True, action="organization.deleted", actor=actor, reason=reason)


def restore_organization(*, org: Organization, actor: Actor, reason: str) -> Organization:
    """Bring a soft-deleted org back; idempotent."""
    return _set_deleted(org, deleted=False, action="organization.restored", actor=actor, reason=reason)


def _set_deleted(org: Organization, *, deleted: bool, action: str, actor: Actor, reason: str) -> Organization:
    """Soft-delete or restore the org under its row lock, audited; an org already so changes nothing."""
    with transaction.atomic():
        org = Organization.objects.select_for_update().get(pk=org.pk)
        if (org.deleted_at is not None) == deleted:
            return org
        before = org_snapshot(org)
        org.deleted_at = timezone.now() if deleted else None
        org.save(update_fields=["deleted_at", "updated_at"])
        record_audit(
            actor=actor,
            action=action,
            category=AuditCategory.ORGANIZATION,
            org=org,
            before=before,
            after=org_snapshot(org),
            reason=reason,
        )
        emit_event(
            org_id=org.pk,
            event_type=EventType.ORG_DELETED if deleted else EventType.ORG_RESTORED,
            data={"deleted_at": org.deleted_at.isoformat() if org.deleted_at else None},
        )
    return org


def update_organization(
    *, org: Organization, name: str, billing_email: str, slug: str, personal: bool, actor: Actor
) -> Organization:
    """Change an org's own fields in one transaction, audited; unchanged input writes nothing."""
    with transaction.atomic():
        org = Organization.objects.select_for_update().get(pk=org.pk)
        before = org_snapshot(org)
        org.name, org.billing_email, org.slug, org.personal = name, billing_email, slug, personal
        if org_snapshot(org) == before:
            return org
        try:
            with transaction.atomic():
                org.save()
        except IntegrityError:
            raise SlugTaken(details={"slug": slug}) from None
        record_audit(
            actor=actor,
            action="organization.updated",
            category=AuditCategory.ORGANIZATION,
            org=org,
            before=before,
            after=org_snapshot(org),
        )
    return org
