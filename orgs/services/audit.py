"""The audit trail: every service that changes state records who did what, in its transaction."""

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User

from core.requests import request_id_var
from orgs.models import ActorType, AuditCategory, AuditEntry, Organization, Product
from orgs.services.events import note_product_orgs


@dataclass(frozen=True)
class Actor:
    """Who is acting: a staff user, a product (API key), Stripe (a webhook) or a system task."""

    type: ActorType
    user: User | None = None
    product: Product | None = None
    label: str = ""

    @classmethod
    def staff(cls, user: User) -> "Actor":
        return cls(ActorType.STAFF, user=user, label=user.get_username())

    @classmethod
    def for_product(cls, product: Product) -> "Actor":
        return cls(ActorType.PRODUCT, product=product, label=product.slug)

    @classmethod
    def stripe(cls, event_id: str = "") -> "Actor":
        return cls(ActorType.STRIPE, label=event_id)

    @classmethod
    def system(cls, name: str) -> "Actor":
        return cls(ActorType.SYSTEM, label=name)

    @property
    def is_staff(self) -> bool:
        return self.type == ActorType.STAFF


def record_audit(
    *,
    actor: Actor,
    action: str,
    category: AuditCategory,
    org: Organization | None = None,
    org_id: int | None = None,
    product: Product | None = None,
    product_id: int | None = None,
    subscription_id: str = "",
    invoice_id: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str = "",
) -> AuditEntry:
    """Append one audit entry; call it inside the transaction of the change it records.

    Name the org by `org` or, where only its id is at hand, by `org_id`; an entry about a product's
    own terms names the `product` (or `product_id`) instead. A product acting about an org is noted
    as one that has called about it (it then receives the org's member.* events).
    """
    subject_org_id = org.pk if org is not None else org_id
    if actor.product is not None and subject_org_id is not None:
        note_product_orgs(product_id=actor.product.pk, org_ids=[subject_org_id])
    return AuditEntry.objects.create(
        actor_type=actor.type,
        actor_user=actor.user,
        actor_product=actor.product,
        actor_label=actor.label[:200],
        action=action,
        category=category,
        org_id=subject_org_id,
        product_id=product.pk if product is not None else product_id,
        subscription_id=subscription_id,
        invoice_id=invoice_id,
        before=before,
        after=after,
        reason=reason,
        request_id=request_id_var.get(),
    )
