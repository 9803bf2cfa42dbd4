"""`{% load display %}`: `{{ value|credits }}` and `{{ cents|money:currency }}` (core/display.py)."""

from django import template

from core.display import credits_text, money_text

register = template.Library()


@register.filter
def credits(value: object) -> str:
    return credits_text(value)


@register.filter
def money(minor_units: object, currency: str | None) -> str:
    return money_text(minor_units, currency)
