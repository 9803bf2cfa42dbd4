"""The meter reporter's lock: one reporter at a time across processes (Redis), or in one process on
the embedded default (shadow mode only: sending without Redis is refused)."""

import contextlib
import threading
import time
from collections.abc import Iterator

import redis
import redis.lock
from django.conf import settings

LOCK_KEY = "billing:meter-reporter"
LOCK_TTL_SECONDS = 15 * 60
_process_lock = threading.Lock()


class ReporterBusy(Exception):
    pass


class HeldLock:
    """The reporter lock while held: `renew()` keeps a long run's Redis lock from expiring under it."""

    def __init__(self, lock: redis.lock.Lock | None = None) -> None:
        self.lock, self.renewed = lock, time.perf_counter()

    def renew(self) -> None:
        if self.lock is None or time.perf_counter() - self.renewed < LOCK_TTL_SECONDS / 3:
            return
        try:
            self.lock.reacquire()
        except redis.RedisError as error:  # expired and taken, or Redis gone: stop before sending more
            raise ReporterBusy("The reporter lock expired during the run.") from error
        self.renewed = time.perf_counter()


@contextlib.contextmanager
def reporter_lock(*, shadow: bool) -> Iterator[HeldLock]:
    """One reporter at a time: a Redis lock across processes; a process-local one in shadow mode on
    the embedded default. Sending without Redis is refused."""
    if settings.REDIS_URL is None:
        if not shadow:
            raise ReporterBusy("Redis is required to send meter events (REDIS_URL is unset).")
        if not _process_lock.acquire(blocking=False):
            raise ReporterBusy("Another reporter is running in this process.")
        try:
            yield HeldLock()
        finally:
            _process_lock.release()
        return
    lock = redis.Redis.from_url(settings.REDIS_URL).lock(LOCK_KEY, timeout=LOCK_TTL_SECONDS, blocking=False)
    try:
        acquired = lock.acquire()
    except redis.RedisError as error:
        raise ReporterBusy(f"Redis is unreachable: {error}") from error
    if not acquired:
        raise ReporterBusy("Another reporter holds the lock.")
    try:
        yield HeldLock(lock)
    finally:
        with contextlib.suppress(redis.RedisError):
            lock.release()
