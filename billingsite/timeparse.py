from datetime import UTC, datetime


def parse_instant(value: str | None) -> datetime | None:
    """An ISO-8601 instant (a `Z` suffix allowed) as an aware UTC datetime; None stays None."""
    if value is None:
        return None
    instant = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if instant.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone; add Z or an offset.")
    return instant.astimezone(UTC)
