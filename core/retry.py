"""How long to wait before trying again: the one backoff of the outbox and the meter reports."""

from datetime import timedelta

MAX_BACKOFF = timedelta(hours=1)


def backoff(attempts: int) -> timedelta:
    """30 s after the first failure, doubling, at most an hour."""
    doublings: int = 2 ** min(max(attempts - 1, 0), 10)  # typeshed types int ** int as Any
    return min(timedelta(seconds=30) * doublings, MAX_BACKOFF)
