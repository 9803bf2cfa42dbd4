"""A product's terms: its name, its grant limit (credits) and its bill-from (when its overage starts
to be billed). One check for the catalog and for staff edits; one audited write path."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing.credits import parse_decimal
from billing.exceptions import InvalidProductTerms
from core.instants import parse_hour_instant
from orgs.models import AuditCategory, Product
from orgs.services.audit import Actor, record_audit

NAME_MAX_LENGTH = Product._meta.get_field("name").max_length


@dataclass(frozen=True)
class ProductTerms:
    name: str
    grant_limit: Decimal  # credits
    bill_from: datetime | None


def clean_product_terms(
    *, name: str | None, grant_limit: object, bill_from: str | datetime | None
) -> ProductTerms:
    """A product's terms by the catalog's rules, the one check for load_catalog and staff edits: a name
    of 1–100 characters, a grant limit in credits ≥ 0 with at most 6 decimal places (below 10^14),
    a bill-from on a whole UTC hour or none. InvalidProductTerms names each bad field."""
    problems: dict[str, str] = {}
    name = str(name or "").strip()
    if not name or len(name) > (NAME_MAX_LENGTH or 0):
        problems["name"] = f"must be 1 to {NAME_MAX_LENGTH} characters."
    try:
        # A TOML float arrives as float; its shortest repr is what the file says.
        limit = parse_decimal(str(grant_limit) if isinstance(grant_limit, float) else grant_limit)
    except ValueError as error:
        problems["grant_limit"] = f"must be a number of credits: {error}"
    try:
        start = parse_hour_instant(bill_from)
    except ValueError as error:
        problems["bill_from"] = str(error)
    if problems:
        raise InvalidProductTerms(details={"fields": problems})
    return ProductTerms(name=name, grant_limit=limit, bill_from=start)


def check_product_terms(
    product: Product,
    *,
    name: str | None,
    grant_limit: object,
    bill_from: str | datetime | None,
    now: datetime | None = None,
) -> ProductTerms:
    """clean_product_terms, plus the rule for changing an existing product: a bill-from that has
    passed is never moved, and a new one is never in the past. Either would re-decide hours already
    used: overage billed after the fact, or counted as billed and then left out."""
    terms = clean_product_terms(name=name, grant_limit=grant_limit, bill_from=bill_from)
    now = now or timezone.now()
    # What the meter reporter goes by: the product's own bill-from, else the global one.
    before = product.bill_from or settings.BILLING_BILL_FROM
    after = terms.bill_from or settings.BILLING_BILL_FROM
    if before == after:
        return terms
    if before is not None and before <= now:
        problem = f"cannot move: billing from {before.isoformat()} has begun."
    elif after is not None and after < now:
        problem = f"must not be in the past, not {after.isoformat()}: past usage would be billed late."
    else:
        return terms
    raise InvalidProductTerms(details={"fields": {"bill_from": problem}})


def product_terms_snapshot(product: Product) -> dict[str, Any]:
    return {
        "slug": product.slug,
        "name": product.name,
        "grant_limit": str(product.grant_limit),
        "bill_from": product.bill_from.isoformat() if product.bill_from else None,
    }


def update_product_terms(
    *,
    product: Product,
    name: str,
    grant_limit: object,
    bill_from: str | datetime | None,
    actor: Actor,
    reason: str = "",
) -> tuple[Product, bool]:
    """Change a product's terms in one transaction under its row lock, audited with before and after;
    returns (product, changed). Idempotent: the same terms again write nothing. Checked by
    check_product_terms (InvalidProductTerms, nothing written)."""
    with transaction.atomic():
        product = Product.objects.select_for_update().get(pk=product.pk)
        terms = check_product_terms(product, name=name, grant_limit=grant_limit, bill_from=bill_from)
        before = product_terms_snapshot(product)
        product.name, product.grant_limit, product.bill_from = terms.name, terms.grant_limit, terms.bill_from
        after = product_terms_snapshot(product)
        if after == before:
            return product, False
        product.save(update_fields=["name", "grant_limit", "bill_from"])
        record_audit(
            actor=actor,
            action="product.terms_changed",
            category=AuditCategory.PRODUCT,
            product=product,
            before=before,
            after=after,
            reason=reason,
        )
    return product, True
