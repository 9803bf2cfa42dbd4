"""bench/check: POST /api/v1/entitlements:check under 8 concurrent clients, against a baseline.

The same gunicorn (2 sync workers, durable PostgreSQL) serves both with wrk (8 connections, 2
threads): the check (rotating over 50 orgs, a member, one metric) and the cheapest authenticated
DRF endpoint, GET /api/v1/ping. They alternate in rounds of --seconds (default 5 × 3 rounds, ~15 s
each), so that the host's noise falls on both; the medians are printed, with the ratio
check/baseline. Target: ≥ 700 req/s, p99 ≤ 35 ms, ratio ≥ 0.8.

Rate limits: the check is served twice in the same run, by a server with the limits on (every
request counted, a limit too high to refuse any: the cost of counting) and by one with
`API_RATE_LIMITS=off`, in alternating rounds. Target: on/off ≥ 0.9.
"""

import argparse
import json
import re
import statistics
import subprocess
import tempfile

from common import fresh_database, gunicorn, require, say, setup_django

LUA = """
local bodies = %(bodies)s
local n = 0
wrk.headers["Authorization"] = "Api-Key %(key)s"
wrk.headers["Content-Type"] = "application/json"
request = function()
  n = n + 1
  if #bodies == 0 then return wrk.format("GET", "%(path)s") end
  return wrk.format("POST", "%(path)s", nil, bodies[(n %% #bodies) + 1])
end
"""


def lua_list(items: list[str]) -> str:
    return "{" + ", ".join("[[" + item + "]]" for item in items) + "}"


def run_wrk(wrk: str, url: str, path: str, key: str, bodies: list[str], seconds: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(LUA % {"bodies": lua_list(bodies), "key": key, "path": path})
        script.flush()
        output = subprocess.run(
            [wrk, "-t2", "-c8", f"-d{seconds}s", "--latency", "-s", script.name, url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    if "Non-2xx or 3xx responses" in output:
        raise SystemExit(f"[bench] {path} answered errors:\n{output}")

    def latency(pct: str) -> float:
        value, unit = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M).groups()
        return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]

    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50": latency("50"),
        "p99": latency("99"),
    }


def median_run(runs: list[dict]) -> dict:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    wrk = require("wrk", "wrk")

    fresh_database()
    setup_django()
    from bench_seed import seed

    seeded = seed(orgs=50)
    bodies = [
        json.dumps({"org_id": org_id, "user_id": "member", "metric": "fix_run", "quantity": "1"})
        for org_id in seeded["org_ids"]
    ]
    counted = {"API_RATE_LIMITS": "check=1000000000/60,read=1000000000/60"}
    with gunicorn(workers=2, env=counted) as url, gunicorn(workers=2, env={"API_RATE_LIMITS": "off"}) as off:
        say("warming up")
        run_wrk(wrk, url, "/api/v1/entitlements:check", seeded["key"], bodies, 3)
        run_wrk(wrk, off, "/api/v1/entitlements:check", seeded["key"], bodies, 3)
        checks, unlimited, pings = [], [], []
        for round_ in range(args.rounds):
            say(f"round {round_ + 1}/{args.rounds}: entitlements:check (limits on, then off), then ping")
            checks.append(
                run_wrk(wrk, url, "/api/v1/entitlements:check", seeded["key"], bodies, args.seconds)
            )
            unlimited.append(
                run_wrk(wrk, off, "/api/v1/entitlements:check", seeded["key"], bodies, args.seconds)
            )
            pings.append(run_wrk(wrk, url, "/api/v1/ping", seeded["key"], [], args.seconds))
    check, check_off, ping = median_run(checks), median_run(unlimited), median_run(pings)

    print()
    print(
        f"bench/check — wrk, 8 connections, gunicorn 2 sync workers, durable PostgreSQL,"
        f" median of {args.rounds} rounds"
    )
    print(f"{'endpoint':<28} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7}")
    rows = (
        ("POST entitlements:check", check),
        ("  same, rate limits off", check_off),
        ("GET ping (baseline)", ping),
    )
    for name, result in rows:
        print(f"{name:<28} {result['rps']:>8.0f} {result['p50']:>7.2f} {result['p99']:>7.2f}")
    print(f"ratio check/baseline: {check['rps'] / ping['rps']:.2f}")
    print(f"ratio check limits on/off: {check['rps'] / check_off['rps']:.2f}")
    print("targets: ≥ 700 req/s, p99 ≤ 35 ms, ratio ≥ 0.8, limits on/off ≥ 0.9")


if __name__ == "__main__":
    main()
