"""How long to wait before trying again: the one backoff of the outbox, the meter reports, Stripe
event processing and event deliveries to products."""

from datetime import timedelta

MAX_BACKOFF = timedelta(hours=1)


def backoff(attempts: int, *, maximum: timedelta = MAX_BACKOFF) -> timedelta:
    """30 s after the first failure, doubling, at most `maximum` (an hour unless told)."""
    doublings: int = 2 ** min(max(attempts - 1, 0), 16)  # typeshed types int ** int as Any
    return min(timedelta(seconds=30) * doublings, maximum)
