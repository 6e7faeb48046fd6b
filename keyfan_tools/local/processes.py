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


def listening_inodes(port: int, proc: Path = Path("/proc")) -> set[str]:
    """Socket inodes listening on ``port`` (any local address), from /proc/net/tcp and tcp6."""
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # fields: sl, local_address (hex ip:hex port), rem_address, st (0A = LISTEN), ..., inode (index 9)
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def listens_on(pid: int, port: int, proc: Path = Path("/proc")) -> bool:
    """The port is open *and* it is this pid's socket (not a squatter that got the port first).

    Without /proc (macOS) this degrades to "the port is open": good enough on a developer laptop.
    """
    if not (proc / "net" / "tcp").exists():
        return port_open(port)
    inodes = listening_inodes(port, proc)
    if not inodes:
        return False
    try:
        fds = list((proc / str(pid) / "fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return True
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
    child = _CHILDREN.get(pid)
    if child is not None:
        # Our own child: poll() reaps it if it has exited, so it does not linger as a zombie.
        if child.poll() is None:
            return True
        del _CHILDREN[pid]
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not is_zombie(pid)


def is_our_process(pid: int, argv: Sequence[str], proc: Path = Path("/proc")) -> bool:
    """The pid runs exactly the argv we launched (so it is ours and not a reused pid)."""
    if not (proc / "self").exists():
        return _ps_command(pid) == " ".join(argv)
    return cmdline_of(pid, proc) == list(argv)


def _ps_command(pid: int) -> str | None:
    """Without /proc (macOS), ``ps`` gives the command line joined by spaces."""
    try:
        out = subprocess.run(
            ["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


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
    # Popen may return while the child is still inside exec (its cmdline reads empty): wait until the
    # process shows our argv, so that every later ownership check sees it.
    deadline = time.monotonic() + 5.0
    while not is_our_process(child.pid, argv) and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    return child.pid


def wait_for_port(port: int, *, pid: int, timeout: float, log: Path | None = None) -> None:
    """Wait until ``pid`` itself listens on the port; fail fast if it exits first (e.g. the port was taken)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if listens_on(pid, port):
            return
        if not pid_alive(pid):
            tail = _tail(log) if log else ""
            raise LocalStackError(f"process {pid} exited before port {port} opened{tail}")
        time.sleep(0.05)
    raise LocalStackError(f"pid {pid} did not listen on port {port} within {timeout:.0f}s")


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
