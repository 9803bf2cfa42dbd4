"""Reads that may go to a streaming replica (`DATABASE_REPLICA_URL`), and the router that sends them.

Nothing goes to the replica unless asked: a read runs there only inside `replica_reads()` (the
admin's list pages through `ReplicaChangelistMiddleware`, the usage summary, the parity check's
reads), never inside a transaction on the primary (a read there may need that transaction's own
writes), and never for the tables of sign-in (sessions, users, permissions: a fresh sign-in must
be seen at once). Every write goes to the primary. When the replica does not answer, or lags
behind by more than `DATABASE_REPLICA_MAX_LAG` seconds, those reads go to the primary; the
verdict is remembered per process for `HEALTH_TTL` seconds, so a read costs no extra round trip.
"""

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.models import Model
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve

REPLICA = "replica"
HEALTH_TTL = 2.0
# Sign-in and the admin's own bookkeeping always read their writes.
PRIMARY_ONLY_APPS = frozenset({"auth", "sessions", "contenttypes", "admin"})

logger = logging.getLogger(__name__)
_wanted: ContextVar[bool] = ContextVar("replica_reads", default=False)
_verdict: dict[str, float | bool] = {"at": 0.0, "usable": False}
_verdict_lock = threading.Lock()

# Seconds the replica is behind: 0 when it has replayed all it received (an idle primary sends
# nothing, and the last replayed transaction's age would then be no lag at all); unknown (NULL)
# when it is not receiving from a primary at all (its copy may be arbitrarily old).
LAG_SQL = """
SELECT CASE
    WHEN NOT EXISTS (SELECT 1 FROM pg_stat_wal_receiver) THEN NULL
    WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
    ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0)
END
"""


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


@contextmanager
def replica_reads() -> Iterator[None]:
    """Reads in this block may go to the replica (if there is one and it is usable)."""
    token = _wanted.set(True)
    try:
        yield
    finally:
        _wanted.reset(token)


def replica_lag() -> float:
    """The replica's lag in seconds, infinite when it receives nothing from a primary (raises
    DatabaseError when it does not answer)."""
    with connections[REPLICA].cursor() as cursor:
        cursor.execute(LAG_SQL)
        row = cursor.fetchone()
    return float(row[0]) if row and row[0] is not None else float("inf")


def _check() -> bool:
    try:
        lag = replica_lag()
    except DatabaseError as error:
        logger.warning("read replica unusable, reading from the primary: %s", error)
        connections[REPLICA].close()
        return False
    if lag > settings.DATABASE_REPLICA_MAX_LAG:
        logger.warning("read replica %.1f s behind, reading from the primary", lag)
        return False
    return True


def replica_usable() -> bool:
    """Whether the replica answers and is within the allowed lag (checked at most every HEALTH_TTL)."""
    now = time.monotonic()
    with _verdict_lock:
        if now - float(_verdict["at"]) < HEALTH_TTL:
            return bool(_verdict["usable"])
        usable = _check()
        _verdict.update(at=time.monotonic(), usable=usable)
        return usable


def forget_replica_health() -> None:
    _verdict.update(at=0.0, usable=False)


def read_database(model: type[Model]) -> str:
    """The alias a read of `model` uses now."""
    if not (_wanted.get() and replica_configured()):
        return DEFAULT_DB_ALIAS
    if model._meta.app_label in PRIMARY_ONLY_APPS or connections[DEFAULT_DB_ALIAS].in_atomic_block:
        return DEFAULT_DB_ALIAS
    return REPLICA if replica_usable() else DEFAULT_DB_ALIAS


class ReplicaRouter:
    """Django's database router (DATABASE_ROUTERS): replica reads where asked, everything else primary."""

    def db_for_read(self, model: type[Model], **hints: Any) -> str:
        return read_database(model)

    def db_for_write(self, model: type[Model], **hints: Any) -> str:
        # Explicit: an object read from the replica is saved to the primary, never back there.
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool:
        return True  # the same rows on both

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return db == DEFAULT_DB_ALIAS


class ReplicaChangelistMiddleware:
    """The admin's list pages (GET of a `…_changelist` view) read from the replica."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method != "GET" or not request.path.startswith("/admin/") or not replica_configured():
            return self.get_response(request)
        try:
            name = resolve(request.path_info).url_name or ""
        except Resolver404:
            return self.get_response(request)
        if not name.endswith("_changelist"):
            return self.get_response(request)
        with replica_reads():
            return self.get_response(request)
