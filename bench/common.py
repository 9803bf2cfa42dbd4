"""Shared plumbing for the benchmarks: a fresh database, seed data, a gunicorn server.

Benchmarks are not tests: they print figures. Run them on a quiet machine, from the project root:
`.venv/bin/python bench/ingest.py` (see bench/README.md). They use the PostgreSQL named by
DATABASE_URL (default: localhost:5432 as postgres), durable (fsync and synchronous_commit as the
server has them), in a database of their own, `billing_bench`, rebuilt from a migrated template.
"""

import contextlib
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the benches use the test suite's Stripe stand-in
PYTHON = str(ROOT / ".venv" / "bin" / "python")
SERVER = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres").rsplit("/", 1)[0]
# BENCH_DATABASE names the database (and `<name>_template`), so two checkouts can bench at once.
DATABASE = os.environ.get("BENCH_DATABASE", "billing_bench")
TEMPLATE = f"{DATABASE}_template"
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/12")

ENV = {
    **os.environ,
    "DJANGO_SETTINGS_MODULE": "billingsite.settings",
    "DATABASE_URL": f"{SERVER}/{DATABASE}",
    "REDIS_URL": REDIS_URL,
    "SECRET_KEY": "bench-only",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "DEBUG": "false",
    "LOG_LEVEL": "WARNING",
    # The benches measure throughput, not the rate limits (bench/check measures those on and off).
    "API_RATE_LIMITS": "off",
}


def say(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def fresh_database() -> None:
    """billing_bench, copied from a template that every migration has been applied to."""
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [TEMPLATE]).fetchone():
            conn.execute(f'CREATE DATABASE "{TEMPLATE}"')
    say("migrating the template database (a minute the first time)")
    subprocess.run(
        [PYTHON, "manage.py", "migrate", "-v", "0"],
        cwd=ROOT,
        env={**ENV, "DATABASE_URL": f"{SERVER}/{TEMPLATE}"},
        check=True,
    )
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}" TEMPLATE "{TEMPLATE}"')


def setup_django() -> None:
    os.environ.update(ENV)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def gunicorn(workers: int = 2, env: dict[str, str] | None = None):
    """The service as production runs it: gunicorn, sync workers (`env` adds to its environment)."""
    port = free_port()
    process = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "gunicorn"), "-w", str(workers), "-b", f"127.0.0.1:{port}",
         "--log-level", "warning", "billingsite.wsgi"],
        cwd=ROOT,
        env={**ENV, **(env or {})},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            break
        time.sleep(0.1)
    time.sleep(1)  # let both workers finish importing
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def percentile(values: list[float], pct: float) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[int(pct) - 1]


def require(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if path is None:
        if os.geteuid() == 0 and shutil.which("apt-get"):
            say(f"installing {package} (Debian package)")
            subprocess.run(
                ["apt-get", "install", "-y", "-qq", package], check=True, stdout=subprocess.DEVNULL
            )
            path = shutil.which(binary)
        if path is None:
            sys.exit(f"[bench] needs {binary}: apt-get install {package}")
    return path


def run_wrk(wrk: str, url: str, script: str, seconds: float) -> dict:
    """wrk (2 threads, 8 connections) for `seconds` with a Lua `script`: requests, req/s, p50 and
    p99 in ms, and how many answers were not 2xx or 3xx."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(script)
        lua.flush()
        output = subprocess.run(
            [wrk, "-t2", "-c8", f"-d{seconds:.0f}s", "--latency", "-s", lua.name, url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    def latency(pct: str) -> float:
        value, unit = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M).groups()
        return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "requests": int(re.search(r"(\d+) requests in", output).group(1)),
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50": latency("50"),
        "p99": latency("99"),
        "errors": int(errors.group(1)) if errors else 0,
        "output": output,
    }
