"""The host the benchmark runs on, from the OS and ``/proc``: CPU, RAM and load, and a process's memory."""

from __future__ import annotations

import contextlib
import os
import platform
import resource
from pathlib import Path

from keyfan_tools.bench.results import Machine
from keyfan_tools.bench.samples import MemorySample


def _proc_value(path: str, key: str) -> str | None:
    """What follows ``key:`` on the first line of a ``/proc`` file that starts with it (None if unreadable)."""
    with contextlib.suppress(OSError):
        for line in Path(path).read_text().splitlines():
            if line.split(":", 1)[0].strip() == key:
                return line.split(":", 1)[1].strip()
    return None


def machine_info() -> Machine:
    """nproc, CPU model, RAM, Python: what the results were measured on."""
    total = _proc_value("/proc/meminfo", "MemTotal")
    mem_kb = int(total.split()[0]) if total else 0
    return Machine(
        nproc=os.cpu_count(),
        cpu_model=_proc_value("/proc/cpuinfo", "model name") or "unknown",
        ram_gb=round(mem_kb / 1024 / 1024, 1),
        python=platform.python_version(),
        platform=platform.platform(),
        load_average_start=os.getloadavg(),
    )


def status_kb(pid: int, field: str) -> int:
    """A kilobyte figure of ``/proc/<pid>/status`` (``VmHWM``, ``VmRSS``); 0 if it cannot be read."""
    value = _proc_value(f"/proc/{pid}/status", field)
    return int(value.split()[0]) if value else 0


def harness_memory(records: int) -> MemorySample:
    """The benchmark process itself (all in-process paths, both codecs): its peak RSS, said plainly."""
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    return MemorySample(
        process="bench harness (in-process owner + consumers, all runs)",
        pid=os.getpid(),
        vmhwm_kb=int(peak_kb),
        vmrss_kb=status_kb(os.getpid(), "VmRSS"),
        records=records,
        kms_calls=None,
    )
