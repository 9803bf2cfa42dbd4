"""The replica and topology tests need a real streaming replica of the test database:
bin/test starts one (bin/pg_replica.py) and sets DATABASE_REPLICA_URL for tests/topology."""

import time

import pytest
from django.conf import settings
from django.db import connections

from core.replicas import REPLICA, forget_replica_health

# Committing tests that may read from the replica.
on_replica = pytest.mark.django_db(transaction=True, databases=["default", REPLICA])


def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.parent.name == "topology":
            item.add_marker(pytest.mark.topology)
            if REPLICA not in settings.DATABASES:
                item.add_marker(
                    pytest.mark.skip(
                        reason="no streaming replica: run bin/test (it starts one with pg_basebackup, "
                        "bin/pg_replica.py) or set DATABASE_REPLICA_URL to a replica of the test server"
                    )
                )


def wait_for_replica(timeout: float = 30) -> None:
    """Until the replica has replayed everything the primary has written so far."""
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()")
        (target,) = cursor.fetchone()
    deadline = time.monotonic() + timeout
    with connections[REPLICA].cursor() as cursor:
        while True:
            cursor.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target])
            if cursor.fetchone()[0]:
                return
            assert time.monotonic() < deadline, "the replica did not catch up"
            time.sleep(0.05)


# The lag is measured on the replica from the last replayed commit's age while it has WAL still
# to replay: another database's long transaction on this shared test server (a bulk load) makes it
# look late though it is not, and the reads go to the primary (the safe side). The tests about
# where reads go allow an hour; the lag test sets its own limit.
GENEROUS_LAG = 3600


@pytest.fixture(autouse=True)
def _fresh_replica_verdict(settings):
    settings.DATABASE_REPLICA_MAX_LAG = GENEROUS_LAG
    forget_replica_health()
    yield
    forget_replica_health()
