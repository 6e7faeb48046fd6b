"""Keyfan services (owner, department consumers) as real subprocesses on the local stack.

Each runs as ``python -m <module>`` under its own identity (``stack.env_for``), with its own web port and
Faust data directory, exactly as an ECS task would. Used by the demo, the benchmarks and e2e tests.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keyfan.exceptions import LocalStackError
from keyfan_tools.local import processes
from keyfan_tools.local.stack import LocalStack


@dataclass
class ServiceProcess:
    """A running Keyfan worker we started; ``stop`` or ``kill`` it when done."""

    name: str
    popen: subprocess.Popen[bytes]
    port: int
    log: Path
    env: Mapping[str, str] = field(repr=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def url(self) -> str:
        return f"http://{processes.LOCALHOST}:{self.port}"

    def running(self) -> bool:
        return self.popen.poll() is None

    def get(self, path: str, timeout: float = 5.0) -> str:
        with urllib.request.urlopen(self.url + path, timeout=timeout) as response:  # noqa: S310 (loopback)
            return str(response.read().decode("utf-8"))

    def get_json(self, path: str, timeout: float = 5.0) -> Any:
        return json.loads(self.get(path, timeout))

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout``; returns the exit code."""
        if self.running():
            self.popen.send_signal(signal.SIGTERM)
            try:
                return self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return int(self.popen.wait())

    def kill(self) -> None:
        if self.running():
            self.popen.kill()
        self.popen.wait()

    def peak_rss_kib(self) -> int | None:
        """VmHWM of the live process (peak resident set), from /proc."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        except OSError:
            return None
        return None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start_service(
    stack: LocalStack,
    *,
    module: str,
    identity: str,
    name: str | None = None,
    extra_env: Mapping[str, str] | None = None,
    ready_timeout: float = 60.0,
) -> ServiceProcess:
    """Start ``python -m module`` under ``identity`` and wait until its web server answers."""
    name = name or module
    port = processes.free_port()
    log = stack.state_dir / "logs" / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    data_dir = stack.state_dir / "faust" / name  # created by the worker (keyfan.worker)
    env = {
        **os.environ,
        **stack.env_for(identity),
        "KEYFAN_WEB_PORT": str(port),
        "KEYFAN_DATA_DIR": str(data_dir),
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    with log.open("ab") as sink:
        popen = subprocess.Popen(
            [sys.executable, "-m", module],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    service = ServiceProcess(name=name, popen=popen, port=port, log=log, env=env)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if not service.running():
            raise LocalStackError(f"{name} exited with {popen.returncode} at start:\n{service.log_tail()}")
        if processes.listens_on(popen.pid, port):  # our worker's socket, not a squatter's
            return service
        time.sleep(0.1)
    service.kill()
    raise LocalStackError(f"{name} did not open its web port {port} within {ready_timeout:.0f}s")
