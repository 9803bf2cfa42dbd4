"""Finds PostgreSQL and Redis for the test suite, or starts throwaway ones, then runs it.

In order: DATABASE_URL / REDIS_URL when they answer; else the servers on localhost's standard
ports; else throwaway servers in a temporary directory (installed from Debian's packages first
when missing and running as root). It says which it used, then runs `makemigrations --check`,
`ruff check`, `lint-imports` (the import directions in pyproject.toml), `mypy` (the types; its
cache is in .venv) and pytest (with the arguments given; with none, the whole suite and then its
replica and topology tests, then its calendar tests again at four awkward instants, each on a copy
of the test database, two at a time beside the demo's smoke run on SQLite: bin/demo_smoke.py), and
stops whatever it started.

tests/topology (run alone after the suite, or when named in the arguments) gets a streaming
replica of the test server (bin/pg_replica.py: pg_basebackup -R on a free port) through
DATABASE_REPLICA_URL; when none can be made it says why and those tests are skipped. The browser
suite (tests/browser) needs Debian's chromium and chromium-driver: installed first when missing and
running as root, else it is skipped.
"""

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import redis
from pg_replica import start_replica

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
IS_ROOT = os.geteuid() == 0
cleanups = []


def say(message: str) -> None:
    print(f"\033[1m[test]\033[0m {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_answers(url: str) -> bool:
    try:
        # The maintenance database: the test database is created by pytest-django.
        with psycopg.connect(psycopg.conninfo.make_conninfo(url, dbname="postgres"), connect_timeout=3):
            return True
    except (psycopg.Error, ValueError):
        return False


def redis_answers(url: str) -> bool:
    try:
        return redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3).ping()
    except (redis.RedisError, ValueError):
        return False


def apt_install(package: str) -> None:
    if not (IS_ROOT and shutil.which("apt-get")):
        sys.exit(f"[test] {package} is not installed and I cannot install it (needs root and apt-get).")
    say(f"installing {package} from Debian's packages")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", package], check=True, env=env, stdout=subprocess.DEVNULL
    )


def as_postgres_user(command: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root.
    return ["runuser", "-u", "postgres", "--", *command] if IS_ROOT else command


def start_postgres() -> str:
    def binaries():
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
        return Path(found[-1]).parent if found else None

    bindir = binaries()
    if bindir is None:
        apt_install("postgresql")
        bindir = binaries()
    workdir = Path(tempfile.mkdtemp(prefix="billing-test-pg-"))
    if IS_ROOT:
        shutil.chown(workdir, "postgres", "postgres")
    port = free_port()
    data = workdir / "data"
    subprocess.run(
        as_postgres_user([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"]),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    # A throwaway server for tests only: no fsync.
    options = f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    subprocess.run(
        as_postgres_user(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(workdir / "log"),
                "-w",
                "start",
            ]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
    )

    def stop():
        stop_command = [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]
        subprocess.run(as_postgres_user(stop_command), stdout=subprocess.DEVNULL, check=False)
        shutil.rmtree(workdir, ignore_errors=True)

    cleanups.append(stop)
    say(f"started a throwaway PostgreSQL ({bindir.parent.name}) on 127.0.0.1:{port}")
    return f"postgres://postgres@127.0.0.1:{port}/postgres"


def start_redis() -> str:
    if shutil.which("redis-server") is None:
        apt_install("redis-server")
    workdir = Path(tempfile.mkdtemp(prefix="billing-test-redis-"))
    port = free_port()
    process = subprocess.Popen(
        [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(100):
        if redis_answers(url):
            break
        time.sleep(0.1)
    else:
        sys.exit("[test] the throwaway Redis did not start")

    def stop():
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)

    cleanups.append(stop)
    say(f"started a throwaway Redis on 127.0.0.1:{port}")
    return url


def find_postgres() -> str:
    given = os.environ.get("DATABASE_URL")
    if given:
        if postgres_answers(given):
            say("using PostgreSQL from DATABASE_URL")
            return given
        say("DATABASE_URL does not answer; looking on localhost")
    for user in ("postgres", os.environ.get("USER") or "root"):
        url = f"postgres://{user}@127.0.0.1:5432/postgres"
        if postgres_answers(url):
            say(f"using PostgreSQL on localhost:5432 as {user}")
            return url
    say("no PostgreSQL answers on localhost:5432")
    return start_postgres()


def find_redis() -> str:
    given = os.environ.get("REDIS_URL")
    if given:
        if redis_answers(given):
            say("using Redis from REDIS_URL")
            return given
        say("REDIS_URL does not answer; looking on localhost")
    # Database 15 keeps test keys away from anything using the default database.
    url = "redis://127.0.0.1:6379/15"
    if redis_answers(url):
        say("using Redis on localhost:6379 (database 15)")
        return url
    say("no Redis answers on localhost:6379")
    return start_redis()


TOPOLOGY = "tests/topology"


def names_topology(args: list[str]) -> bool:
    """Whether a developer's selection takes tests/topology (not merely `--ignore`s it)."""
    after_option = {"--ignore", "--ignore-glob", "--deselect"}
    return any(
        arg.startswith(TOPOLOGY) and (i == 0 or args[i - 1] not in after_option) for i, arg in enumerate(args)
    )


def with_replica(env: dict) -> dict:
    """The environment with DATABASE_REPLICA_URL: a streaming replica started for this run."""
    made = start_replica(env["DATABASE_URL"], say)
    if isinstance(made, str):
        say(f"no streaming replica: {made}; the replica and topology tests will be skipped")
        return env
    url, stop = made
    cleanups.append(stop)
    return {**env, "DATABASE_REPLICA_URL": url}


BROWSER_PACKAGES = {"chromium": "chromium", "chromedriver": "chromium-driver"}  # binary: Debian package


def find_browser() -> None:
    """The browser suite (tests/browser) drives Debian's Chromium through its chromedriver; installed
    here when missing and running as root (a tool's own browser download fails on these machines),
    else that suite skips itself and says why."""
    missing = [package for binary, package in BROWSER_PACKAGES.items() if not shutil.which(binary)]
    if not missing:
        say("browser tests: Debian's chromium and chromium-driver")
        return
    if IS_ROOT and shutil.which("apt-get"):
        for package in missing:
            apt_install(package)
        return
    say(f"browser tests will be skipped: {' and '.join(missing)} missing (install them, or run as root)")


def run(step: str, command: list[str], env: dict) -> None:
    say(step)
    result = subprocess.run(command, cwd=ROOT, env=env, check=False)
    if result.returncode != 0:
        say(f"FAILED: {step}")
        sys.exit(result.returncode)


def run_side_by_side(steps: list[tuple[str, list[str], dict]], *, at_once: int) -> None:
    """Run the steps `at_once` at a time, each one's output kept apart and shown when it ends; stop
    at the first that fails (the others are killed)."""
    waiting, running, failed = list(steps), [], None
    while (waiting or running) and failed is None:
        while waiting and len(running) < at_once:
            step, command, env = waiting.pop(0)
            say(f"{step} (started)")
            log = tempfile.TemporaryFile()  # noqa: SIM115 (open until its step ends, closed below)
            process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
            running.append((step, process, log, time.monotonic()))
        time.sleep(1)
        for entry in list(running):
            step, process, log, started = entry
            if process.poll() is None:
                continue
            running.remove(entry)
            log.seek(0)
            sys.stdout.flush()
            sys.stdout.buffer.write(log.read())
            sys.stdout.flush()
            log.close()
            outcome = "passed" if process.returncode == 0 else "FAILED"
            say(f"{step}: {outcome} in {time.monotonic() - started:.0f} s")
            if process.returncode != 0 and failed is None:
                failed = (step, process.returncode)
    for _, process, log, _ in running:
        process.kill()
        process.wait()
        log.close()
    if failed is not None:
        say(f"FAILED: {failed[0]}")
        sys.exit(failed[1])


def copy_of_test_database(env: dict, n: int) -> dict:
    """The environment for a run of its own: a copy of the suite's test database (made from it as a
    template, so no migration runs again; dropped at the end) and Redis database 10 + n."""
    source = env["TEST_DATABASE_NAME"]
    name = f"{source}_copy{n}"
    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as server:
        # A template must have no other sessions (a process of the topology test lingering).
        server.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            [source],
        )
        server.execute(f'DROP DATABASE IF EXISTS "{name}"')
        server.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')

    def drop() -> None:
        with psycopg.connect(env["DATABASE_URL"], autocommit=True) as server:
            server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    cleanups.append(drop)
    redis_url = env["REDIS_URL"].rsplit("/", 1)[0] if env["REDIS_URL"].count("/") > 2 else env["REDIS_URL"]
    return {**env, "TEST_DATABASE_NAME": name, "REDIS_URL": f"{redis_url.rstrip('/')}/{10 + n}"}


# The calendar tests run again with the clock pinned at each of these: the last second of a month,
# the first of the next, the last second of a year and a leap day (tests/conftest.py: TEST_CLOCK).
CALENDAR_INSTANTS = [
    "2026-11-30T23:59:59Z",
    "2026-12-01T00:00:00Z",
    "2026-12-31T23:59:59Z",
    "2028-02-29T12:00:00Z",
]


def main() -> None:
    env = {**os.environ, "DATABASE_URL": find_postgres(), "REDIS_URL": find_redis()}
    # pytest-django creates this database; the URL only names the server.
    env.setdefault("TEST_DATABASE_NAME", "test_billing")
    env.pop("DEBUG", None)
    env.pop("TEST_CLOCK", None)
    env.setdefault("SECRET_KEY", "tests-only-not-a-secret")
    env.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
    python = str(VENV_BIN / "python")
    pytest = [python, "-m", "pytest"]
    find_browser()
    run("migrations match the models", [python, "manage.py", "makemigrations", "--check", "--dry-run"], env)
    run("lint (ruff)", [str(VENV_BIN / "ruff"), "check", "--quiet", "."], env)
    run("import directions (import-linter)", [str(VENV_BIN / "lint-imports"), "--no-cache"], env)
    run("types (mypy)", [str(VENV_BIN / "mypy")], env)
    if sys.argv[1:]:  # a developer's selection: just that (with a replica if it takes tests/topology)
        if names_topology(sys.argv[1:]):
            env = with_replica(env)
        run("test suite (pytest)", [*pytest, *sys.argv[1:]], env)
    else:  # the whole suite on a fresh database (kept for the calendar runs), then the calendar runs
        run("test suite (pytest)", [*pytest, "--create-db", "--reuse-db", "--ignore", TOPOLOGY], env)
        # The production topology on this machine (about two minutes more): a streaming replica of
        # the test database, every process of the Procfile, traffic, a web and a worker killed.
        run(
            "replica and topology tests (tests/topology)",
            [*pytest, "--reuse-db", TOPOLOGY],
            with_replica(env),
        )
        # The calendar reruns, each on its own copy of the test database and its own Redis
        # database, two at a time (about 4 minutes each), with the demo's smoke run on SQLite (the
        # embedded default keeps its own paths of the hot code; the suite refuses anything but
        # PostgreSQL, so the demo's commands run once here, about two minutes).
        steps = [
            (
                f"calendar tests with the clock at {instant}",
                [*pytest, "--reuse-db", "-q", "-m", "calendar"],
                {**copy_of_test_database(env, n), "TEST_CLOCK": instant},
            )
            for n, instant in enumerate(CALENDAR_INSTANTS, start=1)
        ]
        steps.append(
            ("demo smoke on SQLite (bin/demo_smoke.py)", [python, str(ROOT / "bin" / "demo_smoke.py")], env)
        )
        run_side_by_side(steps, at_once=2)
    say("all green")


def stop_on_signals() -> None:
    """SIGTERM (a CI runner cancelling) and SIGHUP (a closed terminal) end the run as Ctrl-C does:
    the running step is killed and the servers and folders this run started are removed."""

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop)


if __name__ == "__main__":
    stop_on_signals()
    try:
        main()
    finally:
        for cleanup in reversed(cleanups):
            cleanup()
