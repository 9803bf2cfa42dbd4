"""The catalog's plans: parsed and checked (every problem named), then written.

A plan is data: its name, rank (the highest plan among an org's subscriptions wins), monthly
credits, seats, overage, prices, and whether it is the default plan (orgs without a subscription,
and the allowance of an org whose payment is due). Adding a plan is a catalog entry and a
load_catalog; nothing in the code names a plan.

Keys beyond the original format, both optional: `rank` (give it to every plan or to none; without
it plans rank by monthly price, then monthly credits, then name) and `default = true` (one plan at
most, with no monthly price; without it the default plan stays, or is the lowest-ranked one).
"""

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db.models import F

from billing.models import Plan

NAME_MAX_LENGTH = Plan._meta.get_field("name").max_length
KNOWN_KEYS = {
    "monthly_credits",
    "seats",
    "overage",
    "monthly_price_cents",
    "currency",
    "overage_cents_per_credit",
    "rank",
    "default",
}

DecimalReader = Callable[[Any, str, list[str]], Decimal | None]


def _whole(value: Any, *, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _parse_plan(
    name: str, spec: dict[str, Any], problems: list[str], decimal: DecimalReader
) -> dict[str, Any]:
    where = f"plans.{name}"
    try:
        validate_slug(name)
        if len(name) > (NAME_MAX_LENGTH or 0):
            raise ValidationError("too long")
    except ValidationError:
        problems.append(f"{where}: a plan's name is a slug of at most {NAME_MAX_LENGTH} characters")
    unknown = sorted(set(spec) - KNOWN_KEYS)
    if unknown:
        problems.append(f"{where}: unknown keys {', '.join(unknown)}")
    seats = spec.get("seats", "unlimited")
    if seats != "unlimited" and not _whole(seats, minimum=1):
        problems.append(f'{where}.seats: a whole number ≥ 1, or "unlimited"')
    overage = spec.get("overage", False)
    if not isinstance(overage, bool):
        problems.append(f"{where}.overage: true or false")
    price_cents = spec.get("monthly_price_cents", 0)
    if not _whole(price_cents, minimum=0):
        problems.append(f"{where}.monthly_price_cents: a whole number of cents ≥ 0")
    overage_price = spec.get("overage_cents_per_credit")
    if overage and overage_price is None:
        problems.append(f"{where}.overage_cents_per_credit: required when overage is true")
    if "rank" in spec and not _whole(spec["rank"], minimum=0):
        problems.append(f"{where}.rank: a whole number ≥ 0")
    if not isinstance(spec.get("default", False), bool):
        problems.append(f"{where}.default: true or false")
    elif spec.get("default") and price_cents != 0:
        problems.append(
            f"{where}.default: the default plan has no monthly price (orgs on it never subscribed)"
        )
    return {
        "monthly_credits": decimal(spec.get("monthly_credits", "0"), f"{where}.monthly_credits", problems),
        "seat_limit": None if seats == "unlimited" else seats,
        "overage_allowed": overage,
        "monthly_price_cents": price_cents,
        "currency": str(spec.get("currency", "usd")).lower(),
        "overage_cents_per_credit": (
            decimal(overage_price, f"{where}.overage_cents_per_credit", problems)
            if overage_price is not None
            else None
        ),
    }


def _ranks(specs: dict[str, dict[str, Any]], plans: dict[str, dict[str, Any]], problems: list[str]) -> None:
    given = [name for name, spec in specs.items() if "rank" in spec]
    if given and len(given) != len(specs):
        problems.append("plans: give `rank` to every plan or to none")
        return
    if given:
        ranks = {name: spec["rank"] for name, spec in specs.items()}
    else:
        order = sorted(
            plans, key=lambda n: (plans[n]["monthly_price_cents"], plans[n]["monthly_credits"] or 0, n)
        )
        ranks = {name: position for position, name in enumerate(order)}
    if len(set(ranks.values())) != len(ranks):
        problems.append("plans: two plans have the same rank")
    for name, rank in ranks.items():
        plans[name]["rank"] = rank


def parse_plans(
    document_plans: dict[str, Any], problems: list[str], decimal: DecimalReader
) -> dict[str, Any]:
    """{name: the plan's fields (rank included)}, and `default`: the plan the catalog makes the
    default, or None. Problems are appended to `problems`."""
    specs = {name: spec if isinstance(spec, dict) else {} for name, spec in document_plans.items()}
    plans = {name: _parse_plan(name, spec, problems, decimal) for name, spec in specs.items()}
    _ranks(specs, plans, problems)
    defaults = [name for name, spec in specs.items() if spec.get("default") is True]
    if len(defaults) > 1:
        problems.append(f"plans: one default plan at most, not {', '.join(defaults)}")
    return {"plans": plans, "default": defaults[0] if defaults else None}


def _rank_conflicts(plans: dict[str, dict[str, Any]]) -> list[str]:
    others = Plan.objects.exclude(name__in=plans).values_list("name", "rank")
    taken = {rank: name for name, rank in others}
    return [
        f"plans.{name}.rank: {terms['rank']} is the rank of {taken[terms['rank']]}, a plan this catalog "
        "does not list"
        for name, terms in plans.items()
        if terms["rank"] in taken
    ]


def load_plans(parsed: dict[str, Any], update: Callable[..., bool]) -> list[str]:
    """Create or update the plans (call inside the catalog's transaction); returns the names changed.
    Raises ValueError naming a rank another stored plan holds."""
    plans: dict[str, dict[str, Any]] = parsed["plans"]
    conflicts = _rank_conflicts(plans)
    if conflicts:
        raise ValueError(conflicts)
    # Ranks are unique: the plans that move first step aside (negative, never a catalog rank).
    moving = [p.pk for p in Plan.objects.filter(name__in=plans) if p.rank != plans[p.name]["rank"]]
    Plan.objects.filter(pk__in=moving).update(rank=-F("pk"))
    changed = []
    for name, terms in plans.items():
        plan, created = Plan.objects.get_or_create(name=name, defaults=terms)
        if created or _refreshed(plan, terms, update, moved=plan.pk in moving):
            changed.append(name)
    default = parsed["default"] or _fallback_default(plans)
    if default is not None:
        Plan.objects.filter(is_default=True).exclude(name=default).update(is_default=False)
        if (
            Plan.objects.filter(name=default, is_default=False).update(is_default=True)
            and default not in changed
        ):
            changed.append(default)
    return changed


def _refreshed(plan: Plan, terms: dict[str, Any], update: Callable[..., bool], *, moved: bool) -> bool:
    if moved:
        plan.refresh_from_db(fields=["rank"])
    return update(plan, **terms)


def _fallback_default(plans: dict[str, dict[str, Any]]) -> str | None:
    """With no `default = true`: the default plan stays; with none at all, the lowest-ranked plan."""
    if Plan.objects.filter(is_default=True).exists() or not plans:
        return None
    return min(plans, key=lambda name: plans[name]["rank"])
