"""bench/check: POST /api/v1/entitlements:check under 8 concurrent clients, against a baseline.

The same gunicorn (2 sync workers, durable PostgreSQL) serves both with wrk (8 connections, 2
threads): the check (rotating over 50 orgs, a member, one metric) and the cheapest authenticated
DRF endpoint, GET /api/v1/ping. They alternate in rounds of --seconds (default 5 × 3 rounds, ~15 s
each), so that the host's noise falls on both; the medians are printed, with the ratio
check/baseline. Target: ≥ 700 req/s, p99 ≤ 35 ms, ratio ≥ 0.8.

Rate limits: the check is served twice in the same run, by a server with the limits on (every
request counted, a limit too high to refuse any: the cost of counting) and by one with
`API_RATE_LIMITS=off`, in alternating rounds. Target: on/off ≥ 0.9.

--receipts also measures what recording decision receipts costs: every org suspended, so every check
is denied (402) and writes its receipt; the same rounds against a server with
ENTITLEMENT_RECEIPTS=false, alternating. Target: on ≥ 0.9 × off.
"""

import argparse
import json
import statistics

from common import ENV, fresh_database, gunicorn, require, say, setup_django
from common import run_wrk as common_run_wrk

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


def run_wrk(
    wrk: str, url: str, path: str, key: str, bodies: list[str], seconds: int, denials: bool = False
) -> dict:
    result = common_run_wrk(wrk, url, LUA % {"bodies": lua_list(bodies), "key": key, "path": path}, seconds)
    if result["errors"] and not denials:
        raise SystemExit(f"[bench] {path} answered errors:\n{result['output']}")
    return result


def wait_ready(url: str) -> None:
    """Until both workers answer: on a loaded machine importing Django takes a worker seconds."""
    import concurrent.futures
    import time
    import urllib.error
    import urllib.request

    def answer(_: int) -> bool:
        try:
            urllib.request.urlopen(url + "/healthz", timeout=30).read()  # noqa: S310 (our http URL)
        except urllib.error.HTTPError:
            pass
        except OSError:
            return False
        return True

    deadline = time.monotonic() + 120
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        while time.monotonic() < deadline and not all(pool.map(answer, range(8))):
            time.sleep(0.5)


def median_run(runs: list[dict]) -> dict:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--receipts", action="store_true", help="also: denials, receipts on vs off")
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
        wait_ready(url)
        wait_ready(off)
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
    if args.receipts:
        receipts(wrk, seeded, bodies, args)


def receipts(wrk: str, seeded: dict, bodies: list[str], args) -> None:
    """Denied checks with decision receipts recorded (batched per process) against the same with none."""
    from billing.models import DenialReceipt
    from billing.services.suspensions import suspend_organization
    from orgs.models import Organization
    from orgs.services.audit import Actor

    for org in Organization.objects.filter(public_id__in=seeded["org_ids"]):
        suspend_organization(org=org, reason="bench", actor=Actor.system("bench"))
    runs: dict[str, list[dict]] = {"on": [], "off": []}
    for round_ in range(args.rounds):
        for mode in ("on", "off"):
            ENV["ENTITLEMENT_RECEIPTS"] = "true" if mode == "on" else "false"
            with gunicorn(workers=2) as url:
                wait_ready(url)
                say(f"denials round {round_ + 1}/{args.rounds}: receipts {mode}")
                run_wrk(wrk, url, "/api/v1/entitlements:check", seeded["key"], bodies, 2, denials=True)
                runs[mode].append(
                    run_wrk(wrk, url, "/api/v1/entitlements:check", seeded["key"], bodies, args.seconds, True)
                )
    on, off = median_run(runs["on"]), median_run(runs["off"])
    print()
    print(f"denied checks (402 billing_suspended), median of {args.rounds} rounds each")
    print(f"{'receipts':<28} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7}")
    for name, result in (("on (batched per process)", on), ("off", off)):
        print(f"{name:<28} {result['rps']:>8.0f} {result['p50']:>7.2f} {result['p99']:>7.2f}")
    total = sum(DenialReceipt.objects.values_list("count", flat=True))
    print(f"ratio on/off: {on['rps'] / off['rps']:.2f} (target ≥ 0.9); {total:,} denials counted in")
    print(f"{DenialReceipt.objects.count():,} receipt rows")


if __name__ == "__main__":
    main()
