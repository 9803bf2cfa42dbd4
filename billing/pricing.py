"""Credit arithmetic: one rounding rule and one lookup of the price in force."""

import bisect
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

from billing.credits import CREDIT_LIMIT, CREDIT_PLACES
from core.errors import InvalidRequest

ROUNDING_RULE = "cost = quantity × credits_per_unit, quantized to 6 decimal places with ROUND_HALF_EVEN"


def cost_of(quantity: Decimal, credits_per_unit: Decimal) -> Decimal:
    """The one rounding rule: computed in Decimal, quantized to 6 places, half to even."""
    return (quantity * credits_per_unit).quantize(CREDIT_PLACES, rounding=ROUND_HALF_EVEN)


COST_BOUND = (
    "A cost (quantity × price), a batch's total per org and a hold's commit stay below 10^14 credits."
)


class CostOutOfBounds(InvalidRequest):
    """400 invalid_request: the cost would not fit the stored credits (NUMERIC(20, 6))."""

    message = "The cost (quantity × price) must stay below 10^14 credits."

    def __init__(self, field: str = "quantity") -> None:
        super().__init__(
            details={"fields": {field: [self.message]}, "max_cost": "100000000000000"},
        )


def bounded_cost(quantity: Decimal, credits_per_unit: Decimal) -> Decimal:
    """cost_of, refused (CostOutOfBounds, before any write) when it would not fit the ledger."""
    cost = cost_of(quantity, credits_per_unit)
    if cost >= CREDIT_LIMIT:
        raise CostOutOfBounds()
    return cost


def fingerprint(fields: dict) -> str:
    """A stable digest of a request body, to tell a replay from a conflicting reuse of a key."""
    canonical = json.dumps(fields, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class PriceVersion:
    price_id: int
    credits_per_unit: Decimal
    effective_from: datetime


class PriceBook:
    """A product's metric prices, every version, to price events by the version in force at their
    occurred_at without a query per event."""

    def __init__(self, versions: dict[str, list[PriceVersion]]):
        self._versions = {key: sorted(v, key=lambda p: p.effective_from) for key, v in versions.items()}
        self._starts = {key: [p.effective_from for p in v] for key, v in self._versions.items()}

    def __contains__(self, metric: str) -> bool:
        return metric in self._versions

    def version_at(self, metric: str, instant: datetime) -> PriceVersion | None:
        index = bisect.bisect_right(self._starts[metric], instant) - 1
        return self._versions[metric][index] if index >= 0 else None
