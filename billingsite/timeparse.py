from datetime import UTC, datetime


def parse_instant(value: str | None) -> datetime | None:
    """An ISO-8601 instant (a `Z` suffix allowed) as an aware UTC datetime; None stays None."""
    if value is None:
        return None
    instant = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if instant.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone; add Z or an offset.")
    return instant.astimezone(UTC)


def parse_hour_instant(value: str | datetime | None) -> datetime | None:
    """A bill-from instant: aware, on a whole UTC hour, returned in UTC; None stays None.

    The one rule for every bill-from (BILLING_BILL_FROM, the catalog, staff edits). Usage is
    billed by hourly bucket from the bill-from on, so an instant inside an hour would leave the
    rest of that hour's usage unbilled (a 12:30 bill-from never billed 12:30–12:59). Raises
    ValueError with a message that starts with "must", for the caller to prefix with the name.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        instant = value
    else:
        try:
            instant = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"must be an ISO-8601 instant, not {value!r}.") from None
    if instant.tzinfo is None:
        raise ValueError(f"must carry a time zone (for example Z), not {value!r}.")
    instant = instant.astimezone(UTC)
    if (instant.minute, instant.second, instant.microsecond) != (0, 0, 0):
        raise ValueError(f"must fall on a whole hour (UTC), not {instant.isoformat()}.")
    return instant
