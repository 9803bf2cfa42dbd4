"""bin/test stops what it started on SIGTERM and SIGHUP as on Ctrl-C."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# bin/run_tests.py's own ending, with a cleanup that leaves a mark and a step that never ends.
SCRIPT = """
import sys, time
sys.path.insert(0, {bin!r})
import run_tests
run_tests.cleanups.append(lambda: open({mark!r}, "w").write("cleaned"))
run_tests.stop_on_signals()
try:
    print("ready", flush=True)
    time.sleep(60)
finally:
    for cleanup in reversed(run_tests.cleanups):
        cleanup()
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_runs_the_cleanups(tmp_path, signum):
    mark = tmp_path / "mark"
    code = SCRIPT.format(bin=str(ROOT / "bin"), mark=str(mark))
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert process.stdout.readline().strip() == "ready"
    started = time.perf_counter()

    process.send_signal(signum)

    assert process.wait(timeout=30) == 128 + signum
    assert mark.read_text() == "cleaned"
    assert time.perf_counter() - started < 30
