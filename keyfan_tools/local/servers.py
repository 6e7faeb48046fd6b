"""The stack's two servers, moto and Tansu: each started detached on a free port, stopped only if still ours.

Ports come from the kernel (``bind(0)``); if another process takes one before the server binds it, the server
is started again on another port. Logs go to ``<state dir>/logs/<name>.log``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from keyfan.exceptions import LocalStackError
from keyfan_tools.local import broker, motoserver, processes
from keyfan_tools.local.state import ProcessInfo, StackState

_PORT_ATTEMPTS = 3
_READY_TIMEOUT = 30.0


def spawn_on_free_port(
    name: str, argv_for: Callable[[int], list[str]], env: dict[str, str], log: Path
) -> ProcessInfo:
    """Start on a free port; if another process grabs the port first, try another one."""
    last: LocalStackError | None = None
    for _ in range(_PORT_ATTEMPTS):
        port = processes.free_port()
        if processes.port_open(port):
            last = LocalStackError(f"port {port} is already taken")
            continue
        argv = argv_for(port)
        pid = processes.spawn_detached(argv, log, env)
        info = ProcessInfo(name=name, pid=pid, port=port, argv=argv, log=log)
        try:
            processes.wait_for_port(port, pid=pid, timeout=_READY_TIMEOUT, log=log)
        except LocalStackError as exc:
            processes.terminate(pid, argv)
            last = exc
            continue
        return info
    raise LocalStackError(f"could not start {name} after {_PORT_ATTEMPTS} attempts: {last}")


def _log(state_dir: Path, name: str) -> Path:
    return state_dir / "logs" / f"{name}.log"


def start_moto(state_dir: Path, base_env: dict[str, str]) -> ProcessInfo:
    """Our patched moto server, auth still off."""
    return spawn_on_free_port(
        "moto", motoserver.moto_argv, motoserver.moto_env(base_env), _log(state_dir, "moto")
    )


def start_broker(state_dir: Path, base_env: dict[str, str]) -> ProcessInfo:
    tansu = broker.tansu_binary()
    return spawn_on_free_port(
        "broker",
        lambda port: broker.broker_argv(port, tansu),
        broker.broker_env(base_env),
        _log(state_dir, "broker"),
    )


def stop_servers(state: StackState) -> list[str]:
    """Signal only the recorded pids that still run the argv we launched; say what was done, line by line."""
    notes = []
    for proc in state.processes():
        if not processes.pid_alive(proc.pid):
            notes.append(f"{proc.name} (pid {proc.pid}) was not running")
        elif not processes.is_our_process(proc.pid, proc.argv):
            notes.append(f"{proc.name}: pid {proc.pid} now runs something else; left alone")
        elif processes.terminate(proc.pid, proc.argv):
            notes.append(f"stopped {proc.name} (pid {proc.pid}, port {proc.port})")
    return notes
