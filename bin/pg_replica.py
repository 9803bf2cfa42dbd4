"""Starts a streaming replica of a PostgreSQL primary for the tests (tests/topology): a second
cluster on a free port, copied with `pg_basebackup -R` and kept up to date by streaming
replication, stopped and removed by the returned cleanup.

Needs the primary's binaries on this machine, `wal_level` replica (PostgreSQL's default) and a
`replication` line in the primary's pg_hba.conf; when that line is missing and the primary is a
local server whose pg_hba.conf this user may write, it adds one for 127.0.0.1 (trust) and reloads.
Returns None with the reason when a replica cannot be made.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

REPLICATION_LINE = "host replication all 127.0.0.1/32 trust  # added by bin/pg_replica.py for the tests\n"
# A hot standby refuses to start with less of these than its primary.
MATCHED = (
    "max_connections",
    "max_worker_processes",
    "max_wal_senders",
    "max_prepared_transactions",
    "max_locks_per_transaction",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_postgres(command: list[str], as_root: bool) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if as_root else command


def _settings(primary: psycopg.Connection) -> dict[str, str]:
    names = (*MATCHED, "wal_level", "server_version_num", "hba_file", "port")
    rows = primary.execute("SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", [list(names)])
    return dict(rows.fetchall())


def _allow_replication(primary: psycopg.Connection, hba_file: str, say: Callable[[str], None]) -> bool:
    path = Path(hba_file)
    try:
        text = path.read_text()
        if REPLICATION_LINE in text:
            return False
        path.write_text(text + REPLICATION_LINE)
    except OSError:
        return False
    primary.execute("SELECT pg_reload_conf()")
    time.sleep(0.5)
    say(f"added a replication line for 127.0.0.1 to {hba_file}")
    return True


def start_replica(primary_url: str, say: Callable[[str], None]) -> tuple[str, Callable[[], None]] | str:
    """(the replica's URL, its cleanup), or why no replica could be made."""
    try:
        with psycopg.connect(primary_url, autocommit=True, connect_timeout=5) as primary:
            settings = _settings(primary)
            info = primary.info
            host, port, user = info.host, info.port, info.user
            if settings.get("wal_level") not in ("replica", "logical"):
                return f"the primary's wal_level is {settings.get('wal_level')}, not replica"
            major = int(settings["server_version_num"]) // 10000
            bindir = Path(f"/usr/lib/postgresql/{major}/bin")
            if not (bindir / "pg_basebackup").exists():
                return f"no PostgreSQL {major} binaries in {bindir}"
            as_root = os.geteuid() == 0  # initdb and postgres refuse to run as root
            workdir = Path(tempfile.mkdtemp(prefix="billing-test-replica-"))
            if as_root:
                shutil.chown(workdir, "postgres", "postgres")
            data = workdir / "data"
            backup = _as_postgres(
                [
                    str(bindir / "pg_basebackup"),
                    "-h",
                    host,
                    "-p",
                    str(port),
                    "-U",
                    user,
                    "-D",
                    str(data),
                    "-R",
                    "-X",
                    "stream",
                    "-c",
                    "fast",
                ],
                as_root,
            )
            result = subprocess.run(backup, capture_output=True, text=True, check=False)
            missing_line = result.returncode != 0 and "pg_hba.conf" in result.stderr
            if missing_line and _allow_replication(primary, settings["hba_file"], say):
                shutil.rmtree(data, ignore_errors=True)
                result = subprocess.run(backup, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                shutil.rmtree(workdir, ignore_errors=True)
                return f"pg_basebackup failed: {result.stderr.strip()}"
    except psycopg.Error as error:
        return f"the primary does not answer: {error}"
    # A Debian cluster keeps its configuration outside the data directory: give the copy its own.
    (data / "pg_hba.conf").write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n")
    (data / "pg_ident.conf").write_text("")
    (data / "postgresql.conf").write_text("")
    if as_root:
        for name in ("pg_hba.conf", "pg_ident.conf", "postgresql.conf"):
            shutil.chown(data / name, "postgres", "postgres")
    replica_port = _free_port()
    matched = " ".join(f"-c {name}={settings[name]}" for name in MATCHED)
    options = (
        f"-p {replica_port} -k {workdir} -c listen_addresses=127.0.0.1 -c hot_standby=on "
        f"-c fsync=off -c hba_file={data / 'pg_hba.conf'} -c ident_file={data / 'pg_ident.conf'} {matched}"
    )
    start = _as_postgres(
        [
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(workdir / "log"),
            "-w",
            "-t",
            "900",
            "start",
        ],
        as_root,
    )

    def stop() -> None:
        command = [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]
        subprocess.run(_as_postgres(command, as_root), stdout=subprocess.DEVNULL, check=False)
        shutil.rmtree(workdir, ignore_errors=True)

    # It replays the WAL written during the copy first: minutes on a busy server.
    if subprocess.run(start, stdout=subprocess.DEVNULL, check=False).returncode != 0:
        log = (workdir / "log").read_text() if (workdir / "log").exists() else ""
        stop()
        return f"the replica did not start: {log[-500:]}"

    say(f"started a streaming replica (PostgreSQL {major}) of {host}:{port} on 127.0.0.1:{replica_port}")
    return f"postgres://{user}@127.0.0.1:{replica_port}/postgres", stop
