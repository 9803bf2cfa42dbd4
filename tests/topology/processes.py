"""The Procfile's processes on this machine, as a process manager runs them: each line in its own
process group (so one can be killed whole), web twice on two ports, a worker per queue, beat."""

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import urllib3
from django.conf import settings

VENV_BIN = Path(sys.executable).parent


def procfile() -> dict[str, str]:
    lines = (settings.BASE_DIR / "Procfile").read_text().splitlines()
    return dict(match.groups() for line in lines if (match := re.match(r"^([a-z_]+):\s*(.+)$", line.strip())))


@dataclass
class Topology:
    env: dict[str, str]
    logs: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    web_ports: dict[str, int] = field(default_factory=dict)

    def start(self, name: str, command: str, **extra: str) -> None:
        log = (self.logs / f"{name}.log").open("a")
        self.processes[name] = subprocess.Popen(
            ["/bin/sh", "-c", command],
            cwd=settings.BASE_DIR,
            env={**self.env, **extra},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: gunicorn's and Celery's children too
        )

    def boot(self, web_ports: list[int]) -> None:
        lines = procfile()
        for index, port in enumerate(web_ports, start=1):
            self.web_ports[f"web.{index}"] = port
            self.start(f"web.{index}", lines["web"], PORT=str(port))
        for name, command in lines.items():
            if name != "web":
                self.start(name, command)

    def kill(self, name: str) -> None:
        """SIGKILL the whole process group: no chance to finish, acknowledge or clean up."""
        os.killpg(self.processes[name].pid, signal.SIGKILL)
        self.processes[name].wait(timeout=30)

    def restart(self, name: str) -> None:
        self.start(name, procfile()[name.split(".")[0]])

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text()[-3000:]

    def wait_for_web(self, timeout: float = 120) -> None:
        http = urllib3.PoolManager(retries=False, timeout=2)
        deadline = time.monotonic() + timeout
        for name, port in self.web_ports.items():
            while True:
                try:
                    if http.request("GET", f"http://127.0.0.1:{port}/healthz").status == 200:
                        break
                except urllib3.exceptions.HTTPError:
                    pass
                assert time.monotonic() < deadline, f"{name} did not start:\n{self.log(name)}"
                time.sleep(0.5)
