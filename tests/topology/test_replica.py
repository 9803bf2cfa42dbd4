"""Reads on a real streaming replica (a second PostgreSQL cluster on another port, fed by streaming
replication from the test server): the admin's list pages, the usage summary and parity read there;
writes and everything else stay on the primary; lag or an outage sends those reads back."""

import socket
import time
from datetime import timedelta

from django.conf import settings
from django.db import connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billingsite.jobs import run_job
from core.replicas import REPLICA, read_database, replica_lag, replica_reads
from orgs.models import Organization
from tests.conftest import FIX_RUN
from tests.factories import OrganizationFactory
from tests.topology.conftest import on_replica, wait_for_replica
from usage.models import MeterParity


def touched(queries: CaptureQueriesContext, table: str) -> bool:
    return any(table in query["sql"] for query in queries.captured_queries)


def record(api, org, count: int, batch: str = "a") -> None:
    events = [
        {
            "event_id": f"evt-{org.pk}-{batch}{n}",
            "org_id": org.public_id,
            "metric": "fix_run",
            "quantity": "1",
            "occurred_at": (timezone.now() - timedelta(hours=1)).isoformat(),
        }
        for n in range(count)
    ]
    response = api.post("/api/v1/usage/events", {"events": events}, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["accepted"] == count


def summary(api, org) -> dict:
    response = api.get(f"/api/v1/orgs/{org.public_id}/usage")
    assert response.status_code == 200, response.content
    return response.json()


@on_replica
def test_the_replica_is_a_streaming_standby_on_another_server():
    with connections[REPLICA].cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery(), inet_server_port(), current_database()")
        in_recovery, port, name = cursor.fetchone()
        cursor.execute("SELECT status FROM pg_stat_wal_receiver")
        (receiving,) = cursor.fetchone()
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery(), inet_server_port(), current_database()")
        primary = cursor.fetchone()
    assert in_recovery is True and receiving == "streaming"
    assert primary[0] is False and port != primary[1] and name == primary[2]


@on_replica
def test_the_usage_summary_reads_from_the_replica(catalog, api, org):
    record(api, org, 3)
    wait_for_replica()
    with (
        CaptureQueriesContext(connections[REPLICA]) as on_replica_side,
        CaptureQueriesContext(connections["default"]) as on_primary,
    ):
        body = summary(api, org)
    assert [row["quantity"] for row in body["totals"]] == ["3.000000"]
    assert body["totals"][0]["cost"] == f"{3 * FIX_RUN:.6f}"
    assert touched(on_replica_side, "usage_usage")
    assert not touched(on_primary, "usage_usage")
    # Authentication (the API key) read its own table on the primary.
    assert not touched(on_replica_side, "rest_framework_api_key")


@on_replica
def test_writes_and_reads_that_need_their_own_writes_stay_on_the_primary(catalog, api, org):
    with CaptureQueriesContext(connections[REPLICA]) as on_replica_side:
        record(api, org, 2)  # ingestion reads duplicates and balances it must see at once
        with replica_reads(), transaction.atomic():
            org.name = "Renamed"
            org.save()
            assert read_database(Organization) == "default"  # inside a transaction: its own writes
            assert Organization.objects.get(pk=org.pk).name == "Renamed"
    assert on_replica_side.captured_queries == []
    with replica_reads():
        assert read_database(Organization) == REPLICA
    assert read_database(Organization) == "default"  # not asked for: the primary


@on_replica
def test_the_admin_list_pages_read_from_the_replica(support):
    OrganizationFactory(name="Listed Org")
    wait_for_replica()
    with (
        CaptureQueriesContext(connections[REPLICA]) as on_replica_side,
        CaptureQueriesContext(connections["default"]) as on_primary,
    ):
        response = support.get("/admin/orgs/organization/")
    assert response.status_code == 200
    assert "Listed Org" in response.content.decode()
    assert touched(on_replica_side, '"orgs_organization"')
    # The session and the staff user are read on the primary (a fresh sign-in is seen at once).
    assert touched(on_primary, "django_session") and not touched(on_replica_side, "django_session")
    assert not touched(on_replica_side, "auth_user")
    organization = Organization.objects.get(name="Listed Org")
    with CaptureQueriesContext(connections[REPLICA]) as on_replica_side:
        response = support.get(f"/admin/orgs/organization/{organization.pk}/change/")
    assert response.status_code == 200
    assert on_replica_side.captured_queries == []  # an object's page: the primary


@on_replica
def test_parity_reads_from_the_replica_and_records_on_the_primary(catalog, api, org):
    record(api, org, 2)
    run_job("rollup_usage")
    wait_for_replica()
    with CaptureQueriesContext(connections[REPLICA]) as on_replica_side:
        run_job("check_meter_parity")
    assert touched(on_replica_side, "usage_meterreport") or touched(on_replica_side, "usage_usagebucket")
    assert not touched(on_replica_side, "INSERT")
    assert MeterParity.objects.filter(drift=True).count() == 0


@on_replica
def test_a_lagging_replica_sends_the_reads_back_to_the_primary(catalog, api, org, monkeypatch):
    record(api, org, 1)
    wait_for_replica()
    monkeypatch.setattr(settings, "DATABASE_REPLICA_MAX_LAG", 0.5)
    with connections[REPLICA].cursor() as cursor:
        cursor.execute("SELECT pg_wal_replay_pause()")
    try:
        record(api, org, 4, batch="b")  # received by the replica, not replayed: it falls behind
        time.sleep(1.5)
        with (
            CaptureQueriesContext(connections[REPLICA]) as on_replica_side,
            CaptureQueriesContext(connections["default"]) as on_primary,
        ):
            body = summary(api, org)
    finally:
        with connections[REPLICA].cursor() as cursor:
            cursor.execute("SELECT pg_wal_replay_resume()")
    # The primary's answer, with the newest usage: the replica was only asked how far behind it is.
    assert [row["quantity"] for row in body["totals"]] == ["5.000000"]
    assert touched(on_primary, "usage_usage")
    assert not touched(on_replica_side, "usage_usage")


@on_replica
def test_a_replica_that_does_not_answer_sends_the_reads_back_to_the_primary(catalog, api, org, monkeypatch):
    record(api, org, 2)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    connections[REPLICA].close()
    monkeypatch.setitem(connections[REPLICA].settings_dict, "PORT", str(closed_port))
    try:
        body = summary(api, org)
    finally:
        connections[REPLICA].close()
    assert [row["quantity"] for row in body["totals"]] == ["2.000000"]


@on_replica
def test_a_replica_cut_off_from_its_primary_sends_the_reads_back_to_the_primary(catalog, api, org):
    record(api, org, 1)
    wait_for_replica()
    with connections[REPLICA].cursor() as cursor:
        cursor.execute("SHOW primary_conninfo")
        (conninfo,) = cursor.fetchone()
        cursor.execute("ALTER SYSTEM SET primary_conninfo = ''")
        cursor.execute("SELECT pg_reload_conf()")
    try:
        deadline = time.monotonic() + 30
        while replica_lag() != float("inf"):  # its WAL receiver stops: it would only grow stale
            assert time.monotonic() < deadline, "the replica kept streaming"
            time.sleep(0.2)
        record(api, org, 2, batch="b")
        with CaptureQueriesContext(connections[REPLICA]) as on_replica_side:
            body = summary(api, org)
    finally:
        with connections[REPLICA].cursor() as cursor:
            quoted = conninfo.replace("'", "''")
            cursor.execute(f"ALTER SYSTEM SET primary_conninfo = '{quoted}'")  # no parameters here
            cursor.execute("SELECT pg_reload_conf()")
    assert [row["quantity"] for row in body["totals"]] == ["3.000000"]
    assert not touched(on_replica_side, "usage_usage")
    wait_for_replica()  # streaming again for the next tests
