"""How long to wait before trying again: the one backoff of the outbox and the meter reports."""

from datetime import timedelta

MAX_BACKOFF = timedelta(hours=1)


def backoff(attempts: int) -> timedelta:
    """30 s after the first failure, doubling, at most an hour."""
    return min(timedelta(seconds=30) * 2 ** min(max(attempts - 1, 0), 10), MAX_BACKOFF)
