"""The catalog: products, their metric prices and the plans, loaded from a TOML document.

Idempotent: loading the same catalog twice changes nothing. A changed price is a new price version
in force from now; usage already recorded keeps the price it was recorded with.
"""

from dataclasses import asdict
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.validators import validate_slug
from django.db import transaction
from django.db.models import Model
from django.utils import timezone

from billing.exceptions import InvalidProductTerms
from billing.models import Metric, MetricPrice, TopUpTerms
from billing.services.catalog_plans import load_plans, parse_plans
from billing.services.product_terms import clean_product_terms
from orgs.models import Product

# The first price version of a metric is in force since the epoch, so that any event, however
# old, has a price.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class CatalogError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


def _decimal(value: Any, where: str, problems: list[str], *, minimum: Decimal = Decimal(0)) -> Decimal | None:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        problems.append(f"{where}: {value!r} is not a decimal number")
        return None
    exponent = number.as_tuple().exponent  # an int for every finite number
    if not number.is_finite() or number < minimum or (isinstance(exponent, int) and exponent < -6):
        problems.append(f"{where}: {value!r} must be a number ≥ {minimum} with at most 6 decimal places")
        return None
    return number


def _parse_topups(spec: dict[str, Any], problems: list[str]) -> dict[str, Any] | None:
    """`[topups]`: cents_per_credit, min_credits, max_credits (min ≤ max), currency (usd)."""
    if not spec:
        return None
    terms = {
        name: _decimal(spec.get(name), f"topups.{name}", problems, minimum=Decimal("0.000001"))
        for name in ("cents_per_credit", "min_credits", "max_credits")
    }
    unknown = set(spec) - {*terms, "currency"}
    if unknown:
        problems.append(f"topups: unknown keys: {', '.join(sorted(unknown))}")
    if terms["min_credits"] and terms["max_credits"] and terms["min_credits"] > terms["max_credits"]:
        problems.append("topups: min_credits is above max_credits")
    return {**terms, "currency": str(spec.get("currency", "usd")).lower()}


def _parse(document: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
    problems: list[str] = []
    unknown = set(document) - {"products", "plans", "topups"}
    if unknown:
        problems.append(f"unknown sections: {', '.join(sorted(unknown))}")
    products: dict[str, Any] = {}
    for slug, spec in (document.get("products") or {}).items():
        where = f"products.{slug}"
        try:
            validate_slug(slug)
        except Exception:
            problems.append(f"{where}: not a slug")
        try:
            # The same check as a staff edit of the product's terms (orgs.services.products).
            terms = clean_product_terms(
                name=spec.get("name") or slug.title(),
                grant_limit=spec.get("grant_limit", "10000"),
                bill_from=spec.get("bill_from") or None,
            )
        except InvalidProductTerms as error:
            terms = None
            problems.extend(
                f"{where}.{field}: {message}" for field, message in error.details["fields"].items()
            )
        metrics: dict[str, dict[str, Any]] = {}
        for key, metric in (spec.get("metrics") or {}).items():
            metric_where = f"{where}.metrics.{key}"
            if not metric.get("unit"):
                problems.append(f"{metric_where}.unit: required")
            metrics[key] = {
                "unit": str(metric.get("unit", "")),
                "description": str(metric.get("description", "")),
                "credits_per_unit": _decimal(
                    metric.get("credits_per_unit"), f"{metric_where}.credits_per_unit", problems
                ),
            }
        products[slug] = {"terms": terms, "metrics": metrics}
    plans = parse_plans(document.get("plans") or {}, problems, _decimal)
    topups = _parse_topups(document.get("topups") or {}, problems)
    if problems:
        raise CatalogError(problems)
    return products, plans, topups


def load_catalog(document: dict[str, Any], *, now: datetime | None = None) -> dict[str, list[str]]:
    """Create or update products, metric prices and plans from a parsed catalog, in one transaction.

    Validates everything first (CatalogError lists every problem; nothing is written). Returns what
    changed.
    """
    now = now or timezone.now()
    products, plans, topups = _parse(document)
    changes: dict[str, list[str]] = {"products": [], "metrics": [], "prices": [], "plans": []}
    with transaction.atomic():
        for slug, spec in products.items():
            terms = asdict(spec["terms"])
            product, created = Product.objects.get_or_create(slug=slug, defaults=terms)
            if created or _update(product, **terms):
                changes["products"].append(slug)
            for key, metric_spec in spec["metrics"].items():
                metric, created = Metric.objects.get_or_create(
                    product=product,
                    key=key,
                    defaults={"unit": metric_spec["unit"], "description": metric_spec["description"]},
                )
                if created or _update(
                    metric, unit=metric_spec["unit"], description=metric_spec["description"]
                ):
                    changes["metrics"].append(f"{slug}.{key}")
                current = metric.prices.order_by("-effective_from").first()
                if current is None or current.credits_per_unit != metric_spec["credits_per_unit"]:
                    MetricPrice.objects.create(
                        metric=metric,
                        credits_per_unit=metric_spec["credits_per_unit"],
                        effective_from=EPOCH if current is None else now,
                    )
                    changes["prices"].append(f"{slug}.{key}={metric_spec['credits_per_unit']}")
        if topups is not None:
            topup_terms, created = TopUpTerms.objects.get_or_create(pk=1, defaults=topups)
            if created or _update(topup_terms, **topups):
                changes["topups"] = [f"{topups['cents_per_credit']} cents per credit"]
        try:
            changes["plans"] = load_plans(plans, _update)
        except ValueError as conflicts:
            raise CatalogError(conflicts.args[0]) from None
    return changes


def _update(instance: Model, **values: Any) -> bool:
    changed = [field for field, value in values.items() if getattr(instance, field) != value]
    for field in changed:
        setattr(instance, field, values[field])
    if changed:
        instance.save(update_fields=changed)
    return bool(changed)
