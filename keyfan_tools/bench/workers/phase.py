"""The worker phase of a run: the consumer as the Faust worker users run, against its plaintext twin and a bare
Faust agent, each a subprocess draining the same pre-filled topic (see ``drain``).

For each payload size (1 KB and up) the owner's own path (``run_owner_path``) fills one topic with the
reader department's records per codec: one plaintext topic, read by the twin (once per suite) and the bare
agent, and one encrypted topic per suite, read by the service. Each worker gets a fresh group, a fresh Faust
data directory and fresh audit and DLQ topics; the order of the workers is reversed from one run to the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from aiokafka.errors import KafkaError

from keyfan.consumer.app import STATE_TABLE
from keyfan.exceptions import KeyfanError
from keyfan.models import DepartmentEvent
from keyfan_tools.bench.config import BenchConfig
from keyfan_tools.bench.context import BenchContext, Codec, Suite
from keyfan_tools.bench.paths.broker import create_topics, delete_topic, fresh_topic
from keyfan_tools.bench.paths.consumer import READER
from keyfan_tools.bench.paths.owner import run_owner_path
from keyfan_tools.bench.payloads import actual_sizes, distinct_subjects, sized_events
from keyfan_tools.bench.samples import BARE_SUITE, CONSUMER_WORKER, FAUST_BARE, Sample
from keyfan_tools.bench.workers.drain import (
    BARE,
    POLLED,
    SERVICE,
    TWIN,
    Drain,
    WorkerKind,
    WorkerTopics,
    audit_times,
    drain_worker,
    span,
)

Progress = Callable[[str], None]
MIN_SIZE = 1024  # the worker phase measures the sizes from 1 KB up
FAILURES = (KeyfanError, KafkaError, OSError)


class Findings(Protocol):
    """Where a run keeps its samples and its notes (``runner.Measured``)."""

    samples: list[Sample]
    notes: list[str]


@dataclass(frozen=True)
class Plan:
    """One worker to run: its kind, the codec of the topic it drains, the suite (None: the bare agent)."""

    kind: WorkerKind
    codec: Codec
    suite: Suite | None

    @property
    def label(self) -> str:
        return f"{self.kind.name:<7} {self.suite or '':<8}"


def worker_sizes(config: BenchConfig) -> tuple[int, ...]:
    return tuple(size for size in config.sizes if size >= MIN_SIZE)


def plans_for(suites: tuple[Suite, ...], run: int) -> list[Plan]:
    """The bare agent once, then the twin and the service per suite; the other way round on odd runs."""
    plans = [Plan(BARE, "plaintext", None)]
    for suite in suites:
        plans += [Plan(TWIN, "plaintext", suite), Plan(SERVICE, "encrypted", suite)]
    return plans if run % 2 == 0 else plans[::-1]


class SourceTopics:
    """The pre-filled topics of one size, each created and filled by the owner path on first use."""

    def __init__(self, ctx: BenchContext, exits: contextlib.AsyncExitStack, events: list[DepartmentEvent]):
        self.ctx, self._exits, self._events = ctx, exits, events
        self._names: dict[tuple[Codec, Suite | None], str] = {}
        self._prefix = "keyfan.bench.workers"

    async def of(self, codec: Codec, suite: Suite) -> str:
        key = (codec, suite if codec == "encrypted" else None)
        if key not in self._names:
            name = f"{self._prefix}.{codec}.{key[1] or 'any'}.{uuid.uuid4().hex[:4]}"  # a retry: a new one
            ctx = self.ctx
            await self._exits.enter_async_context(
                fresh_topic(ctx.bootstrap_servers, name, ctx.registry.partition_count)
            )
            encryptor = ctx.owner_codec(codec, suite)  # the field-level suite: with its subject keys
            await run_owner_path(ctx, encryptor, name, self._events, (), via_sqs=False)
            self._names[key] = name
        return self._names[key]


async def _drain(ctx: BenchContext, plan: Plan, topics: WorkerTopics, group: str, expected: int) -> Drain:
    """The worker's drain, in a thread; if this task is cancelled, the thread stops its worker at once."""
    cancelled = threading.Event()
    try:
        return await asyncio.to_thread(
            drain_worker, ctx, plan.kind, topics, group=group, expected=expected, cancelled=cancelled
        )
    except BaseException:
        cancelled.set()
        raise


async def measure_worker(ctx: BenchContext, plan: Plan, source: str, expected: int) -> Drain:
    """One worker on fresh audit and DLQ topics, all its topics deleted afterwards (Tansu keeps them in RAM)."""
    group = f"keyfan-bench-{plan.kind.name}-{uuid.uuid4().hex[:8]}"
    topics = WorkerTopics(events=source, audit=f"{group}.audit", dlq=f"{group}.dlq")
    bootstrap = ctx.bootstrap_servers
    await create_topics(bootstrap, {topics.audit: 1, topics.dlq: 1})
    try:
        drain = await _drain(ctx, plan, topics, group, expected)
        if plan.kind.audited:
            seen = await audit_times(bootstrap, topics.audit, expected)
            if len(seen) >= expected:
                drain.timed_from(*span(seen.values()), "its audit records' times")
        return drain
    finally:
        for name in (topics.audit, topics.dlq, f"{group}-{STATE_TABLE}-changelog"):
            await delete_topic(bootstrap, name)


def worker_sample(
    plan: Plan, run: int, size: int, drain: Drain, payload: float | None, subjects: int = 0
) -> Sample:
    """A worker's drain as a sample; its KMS and key-table calls are its own counts (``/state``), start-up
    included (a worker has no warm-up)."""
    return Sample(
        run=run,
        path=FAUST_BARE if plan.kind is BARE else CONSUMER_WORKER,
        codec=plan.codec,
        suite=plan.suite or BARE_SUITE,
        size=size,
        records=drain.handled,
        seconds=drain.seconds,
        records_per_second=drain.records_per_second,
        kms_calls=int(drain.counters.get("kms_calls", 0)),
        payload_bytes=payload,
        outcomes=drain.outcomes if plan.kind.audited else {},
        processed=drain.handled,
        key_store_calls=int(drain.counters.get("key_store_calls", 0)),
        subjects=subjects if plan.kind is not BARE else 0,
    )


async def run_worker_set(
    ctx: BenchContext, config: BenchConfig, run: int, size: int, found: Findings, progress: Progress
) -> None:
    """Every worker at one size in one run; a worker that fails is noted and left out."""
    events = sized_events(config.worker_records, [READER], size, 9000 + 1000 * run + size)
    payload = actual_sizes(events).get(READER)
    subjects = distinct_subjects(events)
    async with contextlib.AsyncExitStack() as exits:
        sources = SourceTopics(ctx, exits, events)
        for plan in plans_for(config.suites, run):
            started = time.monotonic()
            what = f"run {run + 1}/{config.runs} worker {plan.label} {size:>6} B"
            try:
                source = await sources.of(plan.codec, plan.suite or config.suites[0])
                drain = await measure_worker(ctx, plan, source, len(events))
            except FAILURES as exc:
                found.notes.append(f"{what.strip()} failed and is left out: {type(exc).__name__}: {exc}")
                progress(found.notes[-1])
                continue
            found.samples.append(worker_sample(plan, run, size, drain, payload, subjects))
            if drain.timed_by == POLLED:
                found.notes.append(
                    f"{what.strip()}: timed by {POLLED} (its own record times were incomplete)"
                )
            progress(
                f"{what} {drain.records_per_second:8,.0f} rec/s (polled {drain.polled_records_per_second:,.0f}) "
                f"({time.monotonic() - started:5.1f}s)"
            )


async def run_workers(
    ctx: BenchContext, config: BenchConfig, run: int, found: Findings, progress: Progress
) -> None:
    """The worker phase of one run, adding each sample to ``found`` as soon as it is measured (so a later
    failure loses nothing already measured)."""
    for size in worker_sizes(config):
        await run_worker_set(ctx, config, run, size, found, progress)
