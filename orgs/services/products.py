"""Products and their API keys (stored hashed, shown once, revocable, never deleted). A product's
terms (grant limit, bill-from) are billing's: billing/services/product_terms.py."""

from typing import cast

from django.db import transaction
from django.utils import timezone

from orgs.models import AuditCategory, Product, ProductAPIKey
from orgs.services.audit import Actor, record_audit


def ensure_product(*, slug: str, name: str | None = None) -> tuple[Product, bool]:
    """Get or create the product `slug`; idempotent. A given name updates the stored one."""
    with transaction.atomic():
        product, created = Product.objects.get_or_create(slug=slug, defaults={"name": name or slug.title()})
        if not created and name and product.name != name:
            product.name = name
            product.save(update_fields=["name"])
    return product, created


def issue_api_key(*, product: Product, name: str, actor: Actor) -> tuple[ProductAPIKey, str]:
    """Issue a new key for `product`; returns (key row, plain key). The plain key is never stored."""
    with transaction.atomic():
        # The library types the row it creates as its abstract model; it is the manager's model.
        api_key, key = cast(
            "tuple[ProductAPIKey, str]", ProductAPIKey.objects.create_key(product=product, name=name[:50])
        )
        record_audit(
            actor=actor,
            action="api_key.issued",
            category=AuditCategory.SECURITY,
            after={"product": product.slug, "prefix": api_key.prefix, "name": api_key.name},
        )
    return api_key, key


def revoke_api_key(*, api_key: ProductAPIKey, actor: Actor, reason: str = "") -> ProductAPIKey:
    """Revoke a key at once, for good; idempotent (revoking a revoked key changes nothing)."""
    with transaction.atomic():
        api_key = ProductAPIKey.objects.select_for_update().select_related("product").get(pk=api_key.pk)
        if api_key.revoked:
            return api_key
        api_key.revoked = True
        api_key.revoked_at = timezone.now()
        api_key.save()
        record_audit(
            actor=actor,
            action="api_key.revoked",
            category=AuditCategory.SECURITY,
            before={"product": api_key.product.slug, "prefix": api_key.prefix, "name": api_key.name},
            reason=reason,
        )
    return api_key
