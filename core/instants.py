"""Instants from text: the one parser of an ISO-8601 / RFC 3339 instant, and the one whole-hour rule.

Every instant the service reads (a job's `--now`, an event's `occurred_at`, a bill-from from the
environment, the catalog or a staff edit) goes through parse_instant: aware (Z or an offset), in
UTC. Errors are ValueErrors whose message starts with "must", for the caller to prefix with the
name of what it read.
"""

from datetime import UTC, datetime
from typing import overload


@overload
def parse_instant(value: str | datetime) -> datetime: ...
@overload
def parse_instant(value: None) -> None: ...
@overload
def parse_instant(value: str | datetime | None) -> datetime | None: ...
def parse_instant(value: str | datetime | None) -> datetime | None:
    """An ISO-8601 instant (`Z` or an offset required) as an aware UTC datetime; None stays None."""
    if value is None:
        return None
    if isinstance(value, datetime):
        instant = value
    elif isinstance(value, str):
        try:
            instant = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(
                f"must be an ISO-8601 instant such as 2026-11-22T10:00:00Z, not {value!r}."
            ) from None
    else:
        raise ValueError("must be an ISO-8601 instant as a string, such as 2026-11-22T10:00:00Z.")
    if instant.tzinfo is None:
        raise ValueError(f"must carry a time zone (for example Z), not {value!r}.")
    try:
        return instant.astimezone(UTC)
    except OverflowError:
        raise ValueError("must fall within the years 1 to 9999 once in UTC.") from None


def floor_hour(instant: datetime) -> datetime:
    """The start of the hour `instant` falls in."""
    return instant.replace(minute=0, second=0, microsecond=0)


def require_whole_hour(instant: datetime) -> datetime:
    """`instant` itself when it falls on a whole hour (UTC), else ValueError."""
    instant = instant.astimezone(UTC)
    if floor_hour(instant) != instant:
        raise ValueError(f"must fall on a whole hour (UTC), not {instant.isoformat()}.")
    return instant


def parse_hour_instant(value: str | datetime | None) -> datetime | None:
    """A bill-from instant: aware, on a whole UTC hour, returned in UTC; None stays None.

    The one rule for every bill-from (BILLING_BILL_FROM, the catalog, staff edits). Usage is
    billed by hourly bucket from the bill-from on, so an instant inside an hour would leave the
    rest of that hour's usage unbilled (a 12:30 bill-from never billed 12:30–12:59).
    """
    instant = parse_instant(value)
    return None if instant is None else require_whole_hour(instant)
