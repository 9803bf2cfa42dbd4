"""The embedded default's smoke run: the demo's SQLite paths, which the PostgreSQL suite never runs.

On a throwaway SQLite file, with no Redis (tasks in process): migrate, seed_demo, smoke_check
--product red (over the real API: org, invitation, entitlement check, usage), runjob rollup_usage,
runjob report_meter_usage (shadow mode), runjob sweep_stripe_events, runjob deliver_events and the
usage partition jobs (no-ops there).
Exits non-zero naming the step that failed.
"""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
STEPS = [
    ["migrate", "--no-input", "-v", "0"],
    ["seed_demo"],
    ["smoke_check", "--product", "red"],
    ["runjob", "rollup_usage"],
    ["runjob", "report_meter_usage"],
    ["runjob", "sweep_stripe_events"],
    ["runjob", "deliver_events"],
    ["runjob", "create_usage_partitions"],
    ["runjob", "archive_usage_partitions"],
]


def main() -> int:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="billing-demo-smoke-") as workdir:
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in {"REDIS_URL", "TEST_CLOCK", "STRIPE_LIVE_MODE", "BILLING_SHADOW_MODE"}
        }
        env.update(DATABASE_URL=f"sqlite:///{workdir}/demo.sqlite3", DEBUG="true")
        for step in STEPS:
            result = subprocess.run(
                [PYTHON, "manage.py", *step], cwd=ROOT, env=env, capture_output=True, text=True, check=False
            )
            if result.returncode != 0:
                print(result.stdout[-3000:], result.stderr[-3000:], sep="\n")
                print(f"[demo smoke] FAILED at: manage.py {' '.join(step)}")
                return result.returncode or 1
            print(f"[demo smoke] ok   manage.py {' '.join(step)}  {result.stdout.strip().splitlines()[-1:]}")
    print(f"[demo smoke] passed in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
