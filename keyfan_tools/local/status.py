"""Is the stack healthy? Each recorded process alive, still ours (the argv we launched) and listening.

Read from the state file and ``/proc`` only: ``status`` never asks the servers themselves.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from keyfan_tools.local import processes
from keyfan_tools.local.state import ProcessInfo, StackState, load_state


class ProcessStatus(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    pid: int
    port: int
    alive: bool
    ours: bool
    listening: bool
    log: Path

    @property
    def healthy(self) -> bool:
        return self.alive and self.ours and self.listening

    @property
    def condition(self) -> str:
        if self.healthy:
            return "healthy"
        if not self.alive:
            return "dead"
        return "not listening" if self.ours else "not ours"


class StackStatus(BaseModel):
    model_config = ConfigDict(frozen=True)

    state_dir: Path
    recorded: bool
    processes: list[ProcessStatus] = Field(default_factory=list)
    provisioned: bool = False
    endpoint_url: str | None = None
    bootstrap_servers: str | None = None
    departments: list[str] = Field(default_factory=list)

    @property
    def servers_healthy(self) -> bool:
        """Both servers run and listen, whether or not the stack is provisioned yet."""
        return len(self.processes) == 2 and all(p.healthy for p in self.processes)

    @property
    def healthy(self) -> bool:
        return self.recorded and self.provisioned and self.servers_healthy

    def render(self) -> str:
        if not self.recorded:
            return f"local stack: not running (state dir {self.state_dir})"
        lines = [f"local stack: {'healthy' if self.healthy else 'UNHEALTHY'} (state dir {self.state_dir})"]
        for p in self.processes:
            lines.append(f"  {p.name:<6} pid {p.pid:<8} 127.0.0.1:{p.port:<6} {p.condition}  log {p.log}")
        lines.append(f"  endpoint  {self.endpoint_url}   bootstrap {self.bootstrap_servers}")
        lines.append(f"  departments: {', '.join(self.departments) or '(not provisioned)'}")
        return "\n".join(lines)


def process_status(proc: ProcessInfo) -> ProcessStatus:
    alive = processes.pid_alive(proc.pid)
    ours = alive and processes.is_our_process(proc.pid, proc.argv)
    return ProcessStatus(
        name=proc.name,
        pid=proc.pid,
        port=proc.port,
        alive=alive,
        ours=ours,
        listening=ours and processes.listens_on(proc.pid, proc.port),
        log=proc.log,
    )


def stack_status(state_dir: Path, state: StackState) -> StackStatus:
    return StackStatus(
        state_dir=state_dir,
        recorded=True,
        processes=[process_status(proc) for proc in state.processes()],
        provisioned=state.provisioned_at is not None,
        endpoint_url=state.endpoint_url,
        bootstrap_servers=state.bootstrap_servers,
        departments=sorted(state.departments),
    )


def read_status(state_dir: Path) -> StackStatus:
    recorded = load_state(state_dir)
    if recorded is None:
        return StackStatus(state_dir=state_dir, recorded=False)
    return stack_status(state_dir, recorded)
