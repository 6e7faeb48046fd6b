"""What every measured path shares: what it reports (``PathRun``), hooks around the measured window (the
profiler's seam), and how long a path may go without progress before the measurement is given up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from keyfan_tools.bench.context import BenchError

STALL_SECONDS = 60.0


@dataclass
class PathRun:
    """One path's measured window (the warm-up left out)."""

    records: int
    seconds: float
    records_per_second: float
    kms_calls: int
    warmup_kms_calls: int
    crypto_ms_mean: float  # per encrypt (owner) or decrypt (consumer) call
    crypto_share: float  # crypto time (summed over threads) / wall time
    # The field-level suite: the subject-key table's calls, and the time spent sealing (owner) or opening
    # (consumer) personal fields, per measured record and as a share of wall time (0 for the other suites).
    key_store_calls: int = field(default=0, kw_only=True)
    warmup_key_store_calls: int = field(default=0, kw_only=True)
    subject_key_ms: float = field(default=0.0, kw_only=True)
    subject_key_share: float = field(default=0.0, kw_only=True)


def per_record_ms(seconds: float, records: int) -> float:
    return 1000.0 * seconds / records if records else 0.0


class MeasureHooks(Protocol):
    """Called around the measured window only (after warm-up and set-up): the profiler uses it."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


class NoHooks:
    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


async def wait_for(
    done: Callable[[], bool],
    what: str,
    *,
    stall: float = STALL_SECONDS,
    interval: float = 0.02,
    worker: asyncio.Future[Any] | None = None,
) -> None:
    """Wait until ``done()``; ``BenchError`` after ``stall`` seconds, or as soon as ``worker`` (the task that
    makes the progress) has ended without it (its own failure is raised as it is)."""
    deadline = time.monotonic() + stall
    while not done():
        if worker is not None and worker.done():
            worker.result()
            if not done():
                raise BenchError(f"{what}: it stopped first")
        if time.monotonic() > deadline:
            raise BenchError(f"stalled: {what}")
        await asyncio.sleep(interval)
