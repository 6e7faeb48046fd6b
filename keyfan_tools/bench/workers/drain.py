"""One Faust worker draining a pre-filled topic, as a subprocess: started, watched, stopped, measured.

Workers start through ``keyfan_tools.local.services.start_service`` (the machinery the demo and the memory
phase use: ``python -m <module>`` under an identity, with the stack's environment, its own web port and a
fresh Faust data directory), pointed at the benchmark's topics by ``KEYFAN_*`` variables, in a fresh group.

Records/s are taken from the worker's own observations of its records, so start-up and group join do not
count: the consumer apps (service and twin) stamp each record's audit record with the time it reached its
outcome, read back from their own audit topic; the bare agent reports the time of its first and last record
in ``/state``. Between two such stamps lie ``handled - 1`` records' work, hence the rate
``(handled - 1) / (last - first)``. Polling ``/state`` every 50 ms (which only tells when the drain is done)
gives the same figure within the polling interval; it is the fallback if the worker's own times are missing.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from keyfan_tools.bench.context import BenchContext, BenchError
from keyfan_tools.bench.paths.broker import CLIENT_ID
from keyfan_tools.bench.paths.consumer import READER
from keyfan_tools.bench.stats import rate
from keyfan_tools.local.services import ServiceProcess, start_service

POLL_SECONDS = 0.05
STALL_SECONDS = 60.0  # no new record for this long (start-up and join included): the drain is given up
AUDIT_READ_SECONDS = 30.0
POLLED = "polling /state"
# /state counters that count a handled record: a consumer app's final outcomes, the bare agent's tally.
HANDLED_COUNTERS = ("decrypted", "access_denied", "dead_lettered", "handled")
OUTCOME_COUNTERS = ("decrypted", "access_denied", "dead_lettered")


@dataclass(frozen=True)
class WorkerKind:
    """A worker the benchmark runs: its module, and whether its records' times come from its audit topic."""

    name: str
    module: str
    audited: bool


SERVICE = WorkerKind("service", f"{READER}_consumer", audited=True)  # the real service, python -m
TWIN = WorkerKind("twin", "keyfan_tools.bench.workers.twin", audited=True)
BARE = WorkerKind("bare", "keyfan_tools.bench.workers.bare", audited=False)


@dataclass(frozen=True)
class WorkerTopics:
    events: str
    audit: str
    dlq: str


@dataclass
class Drain:
    """What one worker did: records handled, outcomes, and when (worker's own times, else the polls')."""

    handled: int
    counters: dict[str, Any]
    polled_first: float | None
    polled_last: float | None
    first_at: float | None = None  # the worker's own time of its first and last record
    last_at: float | None = None
    timed_by: str = POLLED
    outcomes: dict[str, int] = field(default_factory=dict)

    def timed_from(self, first: float | None, last: float | None, source: str) -> None:
        if first is not None and last is not None and last > first:
            self.first_at, self.last_at, self.timed_by = first, last, source

    @property
    def seconds(self) -> float:
        first = self.first_at if self.first_at is not None else self.polled_first
        last = self.last_at if self.last_at is not None else self.polled_last
        return (last - first) if first is not None and last is not None else 0.0

    @property
    def records_per_second(self) -> float:
        return rate(self.handled - 1, self.seconds)

    @property
    def polled_records_per_second(self) -> float:
        """The same from the polls alone (first non-zero count -> count reached), within +/- 50 ms."""
        seconds = (self.polled_last or 0.0) - (self.polled_first or 0.0)
        return rate(self.handled - 1, seconds)


def handled_of(state: Mapping[str, Any]) -> int:
    counters = state.get("counters", {})
    return sum(int(counters.get(name, 0)) for name in HANDLED_COUNTERS)


def outcomes_of(state: Mapping[str, Any]) -> dict[str, int]:
    counters = state.get("counters", {})
    return {name: int(counters.get(name, 0)) for name in OUTCOME_COUNTERS}


def worker_env(topics: WorkerTopics, group: str) -> dict[str, str]:
    return {
        "KEYFAN_TOPIC": topics.events,
        "KEYFAN_AUDIT_TOPIC": topics.audit,
        "KEYFAN_DLQ_TOPIC": topics.dlq,
        "KEYFAN_GROUP_ID": group,
        "KEYFAN_LOG_LEVEL": "WARNING",
    }


def _state(service: ServiceProcess) -> dict[str, Any]:
    try:
        return dict(service.get_json("/state", timeout=3))
    except (OSError, ValueError):
        return {}


def watch(service: ServiceProcess, expected: int, cancelled: threading.Event) -> Drain:
    """Poll ``/state`` until the worker has handled ``expected`` records; ``BenchError`` if it stalls or dies."""
    handled, first, last = 0, None, None
    state: dict[str, Any] = {}
    progressed = time.monotonic()
    while handled < expected:
        if cancelled.is_set():
            raise BenchError(f"{service.name}: cancelled")
        if not service.running():
            raise BenchError(f"{service.name} exited while draining:\n{service.log_tail()}")
        state = _state(service) or state
        now, count = time.time(), handled_of(state)
        if count > handled:
            handled, last, progressed = count, now, time.monotonic()
            first = first if first is not None else now
        elif time.monotonic() - progressed > STALL_SECONDS:
            raise BenchError(f"{service.name} stalled at {handled}/{expected} records")
        time.sleep(POLL_SECONDS)
    return Drain(handled, dict(state.get("counters", {})), first, last, outcomes=outcomes_of(state))


def drain_worker(
    ctx: BenchContext,
    kind: WorkerKind,
    topics: WorkerTopics,
    *,
    group: str,
    expected: int,
    cancelled: threading.Event,
) -> Drain:
    """Start the worker, wait until it has handled ``expected`` records, stop it (SIGTERM, then SIGKILL)."""
    service = start_service(
        ctx.stack, module=kind.module, identity=READER, name=group, extra_env=worker_env(topics, group)
    )
    try:
        drain = watch(service, expected, cancelled)
        if not kind.audited:
            state = _state(service)
            drain.timed_from(state.get("first_at"), state.get("last_at"), "the agent's own first/last times")
        return drain
    finally:
        service.stop()


def note_audit(seen: dict[tuple[int, int], float], value: bytes) -> None:
    """The time of a record's first audit record (a redelivery after a rebalance audits it again later)."""
    try:
        audit = json.loads(value)
        key = (int(audit["partition"]), int(audit["offset"]))
        stamp = datetime.fromisoformat(str(audit["time"])).timestamp()
    except (ValueError, KeyError, TypeError):
        return
    seen.setdefault(key, stamp)


def span(times: Iterable[float]) -> tuple[float | None, float | None]:
    found = list(times)
    return (min(found), max(found)) if found else (None, None)


async def audit_times(bootstrap: str, topic: str, expected: int) -> dict[tuple[int, int], float]:
    """The worker's own time of each record's outcome, from its audit topic (one partition)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100, client_id=CLIENT_ID
    )
    await consumer.start()
    seen: dict[tuple[int, int], float] = {}
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        deadline = time.monotonic() + AUDIT_READ_SECONDS
        while len(seen) < expected and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    note_audit(seen, record.value or b"")
    finally:
        await consumer.stop()
    return seen
