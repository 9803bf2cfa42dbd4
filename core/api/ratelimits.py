"""Rate limits per API key, counted in Redis: `429 rate_limited` with `Retry-After`.

Each endpoint class has a limit of N requests per window of S seconds, per API key (its public
prefix, counted only once the key is verified): `check` (entitlements:check and :reserve),
`write` (every other POST, PUT, PATCH, DELETE) and `read` (GET). `API_RATE_LIMITS` changes them,
e.g. `check=12000/60,write=1200/60,read=1200/60`; `off` turns them off.

Counting is cheap: each process counts in memory and adds its count to the window's Redis key
(INCRBY, one round trip) every BATCH requests or FLUSH_SECONDS, deciding in between from the last
total Redis answered plus its own pending count. With P processes the limit can be overshot by at
most P × BATCH requests per window. If Redis is unreachable the limits fail open (logged): a
limiter must not take the API down. Without REDIS_URL (the embedded default) each process counts
alone.
"""

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings
from rest_framework.exceptions import Throttled
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from core.api.ratelimit_rules import DEFAULT_LIMITS, Limit, parse_limits

logger = logging.getLogger(__name__)

BATCH = 20
FLUSH_SECONDS = 0.5


class RateLimited(Throttled):
    default_code = "rate_limited"


@dataclass
class _Window:
    pending: int = 0
    known: int = 0
    flushed_at: float = 0.0


class Counter:
    """One process's counts, flushed to Redis in batches."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str, int], _Window] = {}
        self._client: Any = None
        self._limits: tuple[str, dict[str, Limit]] | None = None

    def limits(self) -> dict[str, Limit]:
        text = getattr(settings, "API_RATE_LIMITS", DEFAULT_LIMITS)
        if self._limits is None or self._limits[0] != text:
            self._limits = (text, parse_limits(text))
        return self._limits[1]

    def hit(self, key: str, kind: str) -> float | None:
        """Count one request; the seconds to wait when over the limit, else None."""
        limit = self.limits().get(kind)
        if limit is None:
            return None
        now = time.time()
        window_no = int(now // limit.seconds)
        with self._lock:
            window = self._windows.get((key, kind, window_no))
            if window is None:
                self._forget_old(now)
                window = self._windows[(key, kind, window_no)] = _Window(flushed_at=now)
            if window.known + window.pending >= limit.requests:
                return (window_no + 1) * limit.seconds - now
            window.pending += 1
            due = window.pending >= BATCH or now - window.flushed_at >= FLUSH_SECONDS
            count = window.pending if due else 0
            if due:
                window.pending, window.flushed_at = 0, now
        if count:
            total = self._flush(f"ratelimit:{kind}:{key}:{window_no}", count, limit.seconds)
            with self._lock:
                window.known = max(window.known + count, total or 0)
        return None

    def _forget_old(self, now: float) -> None:
        self._windows = {
            k: w for k, w in self._windows.items() if now - w.flushed_at < 2 * max(FLUSH_SECONDS, 60)
        }

    def _flush(self, redis_key: str, count: int, seconds: int) -> int | None:
        if not settings.REDIS_URL:
            return None
        try:
            if self._client is None:
                self._client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.5)
            pipe = self._client.pipeline(transaction=False)
            pipe.incrby(redis_key, count)
            pipe.expire(redis_key, seconds + 5)
            total, _ = pipe.execute()
            return int(total)
        except redis.RedisError:
            logger.warning("Rate limits: Redis is unreachable; requests are let through.")
            return None

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()


counter = Counter()


def enforce(key: str, kind: str) -> None:
    """Count a request of `kind` for the verified key `key`; raises RateLimited (429) when over."""
    wait = counter.hit(key, kind)
    if wait is not None:
        raise RateLimited(wait=math.ceil(wait))


def endpoint_class(request: Request, view: Any) -> str:
    declared = getattr(view, "rate_limit_class", None)
    if isinstance(declared, str):
        return declared
    return "read" if request.method in ("GET", "HEAD", "OPTIONS") else "write"


class ApiKeyRateThrottle(BaseThrottle):
    """DRF's hook: runs after authentication, so only verified keys are counted."""

    def allow_request(self, request: Request, view: Any) -> bool:
        prefix = getattr(request.auth, "prefix", None)
        if isinstance(prefix, str):
            enforce(prefix, endpoint_class(request, view))
        return True
