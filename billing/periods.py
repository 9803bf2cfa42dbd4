"""Billing months: UTC calendar months, half-open [first instant, first instant of the next)."""

from datetime import UTC, date, datetime


def month_of(instant: datetime) -> date:
    """The first day of the UTC month `instant` falls in."""
    instant = instant.astimezone(UTC)
    return date(instant.year, instant.month, 1)


def month_end(month: date) -> datetime:
    """The first instant of the next month: a month's allowance is valid in [month, month_end)."""
    year, month_number = (month.year + 1, 1) if month.month == 12 else (month.year, month.month + 1)
    return datetime(year, month_number, 1, tzinfo=UTC)
