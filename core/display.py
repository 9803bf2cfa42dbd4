"""How the back office writes numbers: credits and quantities one way everywhere, money in its currency.

The one helper for each, used by the admin's Python (columns, captions, messages) and by templates
through the `display` filters (core/templatetags/display.py).
"""

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

PLACES = Decimal("0.000001")  # credits and quantities are stored with 6 places
SYMBOLS = {"eur": "€", "usd": "$", "gbp": "£"}
# Stripe's zero-decimal currencies we might meet: amounts are in units, not cents.
ZERO_DECIMAL = {"jpy", "krw", "vnd", "clp", "isk", "huf"}


def credits_text(value: object) -> str:
    """`209.600000000000` → `209.6`; `1000` → `1,000`; at most 6 places, half-even; "—" for None."""
    if value is None or value == "":
        return "—"
    try:
        number = Decimal(str(value)).quantize(PLACES, rounding=ROUND_HALF_EVEN)
    except (InvalidOperation, ValueError):
        return str(value)
    if number == 0:
        return "0"
    text = format(number, ",f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def money_text(minor_units: object, currency: str | None) -> str:
    """Stripe's amount (cents, or units for zero-decimal currencies) in its currency: `€49.00`."""
    if minor_units is None or minor_units == "":
        return ""
    code = (currency or "").lower()
    amount = Decimal(str(minor_units))
    if code not in ZERO_DECIMAL:
        amount = amount / 100
    places = "0" if code in ZERO_DECIMAL else "0.01"
    text = format(amount.quantize(Decimal(places)), ",f")
    sign, text = ("-", text[1:]) if text.startswith("-") else ("", text)
    symbol = SYMBOLS.get(code)
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {code.upper()}".rstrip()
