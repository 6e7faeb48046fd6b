"""Pid and port helpers for the stack's background processes.

A pid file alone is not proof: pids are reused. Before signalling anything we compare the live process's
command line with the exact argv we launched, so ``down`` can never kill a stranger.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from keyfan.exceptions import LocalStackError

LOCALHOST = "127.0.0.1"

# Popen handles of children started by this interpreter: kept so they can be reaped (a dead child that is
# never waited for stays a zombie, which still answers os.kill(pid, 0)).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def free_port(host: str = LOCALHOST) -> int:
    """Ask the kernel for a port nobody uses right now (a race remains; callers retry on failure)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = LOCALHOST, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def cmdline_of(pid: int, proc: Path = Path("/proc")) -> list[str] | None:
    """The argv of a live process, or None if it is gone (or a zombie, whose cmdline is empty)."""
    try:
        raw = (proc / str(pid) / "cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    if not raw:
        return None
    return raw.rstrip(b"\0").decode("utf-8", "replace").split("\0")


def is_zombie(pid: int, proc: Path = Path("/proc")) -> bool:
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    # Format: "pid (comm) S ..."; comm may hold spaces and parentheses, so split after the last ')'.
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def pid_alive(pid: int) -> bool:
    """True if the pid is a running (non-zombie) process we may signal."""
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not is_zombie(pid)


def is_our_process(pid: int, argv: Sequence[str], proc: Path = Path("/proc")) -> bool:
    """The pid runs exactly the argv we launched (so it is ours and not a reused pid)."""
    return cmdline_of(pid, proc) == list(argv)


def spawn_detached(argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None) -> int:
    """Start a process in its own session so it outlives the CLI that started it and ignores its Ctrl-C."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log, open(os.devnull, "rb") as devnull:
        child = subprocess.Popen(
            list(argv),
            stdin=devnull,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            start_new_session=True,
            close_fds=True,
        )
    _CHILDREN[child.pid] = child
    return child.pid


def _reap(pid: int) -> None:
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        del _CHILDREN[pid]


def wait_for_port(
    port: int, *, pid: int, timeout: float, host: str = LOCALHOST, log: Path | None = None
) -> None:
    """Wait until the port accepts connections; fail fast if the process exits first (e.g. port taken)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port, host):
            return
        if not pid_alive(pid):
            tail = _tail(log) if log else ""
            raise LocalStackError(f"process {pid} exited before port {port} opened{tail}")
        time.sleep(0.05)
    raise LocalStackError(f"port {host}:{port} did not open within {timeout:.0f}s (pid {pid})")


def terminate(pid: int, argv: Sequence[str], timeout: float = 5.0) -> bool:
    """SIGTERM (then SIGKILL) the pid, only if it still runs ``argv``. Returns True if it was signalled."""
    if not pid_alive(pid) or not is_our_process(pid, argv):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    if is_our_process(pid, argv):
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and pid_alive(pid):
            time.sleep(0.05)
    return True


def _tail(log: Path, lines: int = 10) -> str:
    try:
        text = log.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return (":\n  " + "\n  ".join(text)) if text else ""
