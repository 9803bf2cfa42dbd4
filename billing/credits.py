"""Credits and quantities as this service reads and writes them: Decimal with 6 places, NUMERIC(20, 6).

The one definition of a credit's precision (CREDIT_PLACES), of how the API reads an amount from
JSON (parse_decimal, the `quantity` reader, CreditsField) and of how it writes one (credits_str).
"""

from decimal import Decimal
from typing import Any

from rest_framework import serializers

from core.api.parsing import MISSING, Reader, described

CREDIT_PLACES = Decimal("0.000001")
# NUMERIC(20, 6): 14 digits before the point.
CREDIT_LIMIT = Decimal("1e14")


def as_credits(value: Any) -> Decimal:
    """A number the database answered (Decimal on PostgreSQL; float or int on SQLite, the embedded
    default) as credits with 6 places."""
    return Decimal(str(value)).quantize(CREDIT_PLACES)


def parse_decimal(value: object, *, positive: bool = False) -> Decimal:
    """A quantity or credit amount from JSON: a number or a decimal string, never a float (the
    parser reads JSON numbers as Decimal), ≥ 0 (> 0 when positive), at most 6 decimal places,
    below 10^14 (NUMERIC(20, 6)). Raises ValueError with the message for the caller."""
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise ValueError("A number or a decimal string.")
    try:
        number = Decimal(value.strip() if isinstance(value, str) else value)
    except ArithmeticError:
        raise ValueError("A number or a decimal string.") from None
    if not number.is_finite():
        raise ValueError("A finite number.")
    if number < 0 or (positive and number == 0):
        raise ValueError("A number above 0." if positive else "A number of 0 or more.")
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -6:
        raise ValueError("At most 6 decimal places.")
    if number >= CREDIT_LIMIT:
        raise ValueError("Below 10^14.")
    return number.quantize(CREDIT_PLACES)


def quantity(*, default: Decimal | None = None, positive: bool = False) -> Reader:
    """A reader (core.api.parsing.read_object) of a quantity or amount; required unless `default`."""

    def read(value: object) -> Decimal:
        if value is MISSING or value is None:
            if default is None:
                raise ValueError("This field is required.")
            return default
        return parse_decimal(value, positive=positive)

    bound = "> 0" if positive else "≥ 0"
    help_text = f"A decimal string or number, {bound}, at most 6 decimal places."
    field = serializers.CharField(required=default is None, help_text=help_text)
    if default is not None:
        field = serializers.CharField(required=False, default=str(default), help_text=help_text)
    return described(read, field)


class CreditsField(serializers.DecimalField):
    """Credits and quantities: decimal strings out (`"12.500000"`), strings or numbers in."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_digits", 20)
        kwargs.setdefault("decimal_places", 6)
        kwargs.setdefault("coerce_to_string", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Decimal:
        if isinstance(data, bool) or not isinstance(data, (str, int, Decimal)):
            self.fail("invalid")
        return super().to_internal_value(data)


def credits_str(value: Decimal) -> str:
    """A credit amount or quantity as the API writes it: a decimal string with 6 places."""
    return f"{value:.6f}"
