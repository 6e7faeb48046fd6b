"""The consumer path: a benchmark topic -> the department's ``keyfan.consumer.RecordPipeline``, one record at a
time as the Faust agent does, with in-memory audit and dead-letter sinks.

Records/s run from the first fetched record after the warm-up to the last outcome.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord
from prometheus_client import CollectorRegistry

from keyfan.consumer import (
    AuditRecord,
    ConsumerMetrics,
    DomainHandler,
    RawRecord,
    RecordPipeline,
    State,
    record_pipeline,
)
from keyfan.consumer.app import LOOKAHEAD_RECORDS, raw_record
from keyfan.envelope import RecordMetadata
from keyfan.models import DepartmentEvent
from keyfan.plugins import handler_for
from keyfan.settings import ConsumerSettings
from keyfan_tools.bench.context import BenchContext, BenchError
from keyfan_tools.bench.paths.measure import STALL_SECONDS, MeasureHooks, NoHooks, PathRun, per_record_ms
from keyfan_tools.bench.stats import rate
from keyfan_tools.bench.timing import (
    TimedDecryptor,
    key_store_calls,
    kms_calls,
    reset_timers,
    subject_key_seconds,
    subject_keys_port,
)

READER = "sales"  # the consumer measured; it may read sales records and is denied finance's
FOREIGN = "finance"
FETCH_MAX_WAIT_MS = 500  # aiokafka's default


class MemoryAuditSink:
    """Serialises each audit record as the Faust sink does, and keeps a count instead of producing it."""

    def __init__(self) -> None:
        self.records = 0
        self.bytes = 0

    async def publish(self, record: AuditRecord) -> None:
        self.bytes += len(record.to_bytes())
        self.records += 1

    async def flush(self) -> None:
        """Nothing waits: records are counted as they are published."""

    def discard(self) -> None:
        """Nothing is pending."""


class MemoryDeadLetters:
    def __init__(self) -> None:
        self.records: list[tuple[int, int, str]] = []

    async def publish(self, record: RawRecord, reason: str) -> None:
        self.records.append((record.partition, record.offset, reason))


class RecordingHandler:
    """A department handler that also notes when each event reached it (for end-to-end latency)."""

    def __init__(self, inner: DomainHandler) -> None:
        self.inner = inner
        self.department = inner.department
        self.applied: dict[str, float] = {}
        self.produced: dict[str, float] = {}

    def initial_state(self) -> State:
        return self.inner.initial_state()

    def apply(self, state: State, metadata: RecordMetadata, data: Any) -> State:
        new_state = self.inner.apply(state, metadata, data)
        self.applied[metadata.event_id] = time.time()
        self.produced[metadata.event_id] = metadata.produced_at
        return new_state

    def merge(self, states: Any) -> State:
        return self.inner.merge(states)

    def hint(self, metadata: RecordMetadata, data: Any) -> Any:
        return self.inner.hint(metadata, data)


@dataclass
class ConsumerPipeline:
    pipeline: RecordPipeline
    metrics: ConsumerMetrics
    audit: MemoryAuditSink
    dead_letters: MemoryDeadLetters
    handler: RecordingHandler


def consumer_pipeline(ctx: BenchContext, department: str, decryptor: TimedDecryptor) -> ConsumerPipeline:
    """The consumer service's own wiring (``record_pipeline``) with its default settings, around bench I/O;
    the codec's subject keys (the field-level suite) or none."""
    audit, dead_letters = MemoryAuditSink(), MemoryDeadLetters()
    handler = RecordingHandler(handler_for(department))  # the app's own, through its entry point
    settings = ConsumerSettings.model_construct(department=department, group_id=f"keyfan-bench-{department}")
    pipeline = record_pipeline(
        settings,
        handler,
        registry=ctx.registry,
        decryptors=(decryptor,),
        principal=ctx.principal(department),
        store={},
        audit=audit,
        dead_letters=dead_letters,
        metrics_registry=CollectorRegistry(),
        subject_keys=subject_keys_port(decryptor),
    )
    metrics = pipeline.metrics
    return ConsumerPipeline(pipeline, metrics, audit, dead_letters, handler)


@dataclass
class ConsumerRun(PathRun):
    outcomes: dict[str, int]
    value_bytes: float  # per measured record
    record_bytes: float
    processed: int  # warm-up included: what ``outcomes`` counts


def _waiting(fetched: Sequence[ConsumerRecord[bytes, bytes]], start: int) -> list[RawRecord]:
    return [raw_record(m) for m in fetched[start : start + LOOKAHEAD_RECORDS]]


def _key_and_headers_bytes(message: ConsumerRecord[bytes, bytes]) -> int:
    """What a record takes on the topic besides its value."""
    return len(message.key or b"") + sum(len(k) + len(v) for k, v in message.headers)


async def run_consumer_path(
    ctx: BenchContext,
    built: ConsumerPipeline,
    decryptor: TimedDecryptor,
    topic: str,
    partitions: Sequence[int],
    expected: int,
    warmup: int,
    *,
    fetch_max_wait_ms: int = FETCH_MAX_WAIT_MS,
    hooks: MeasureHooks | None = None,
    stall_seconds: float | None = STALL_SECONDS,
) -> ConsumerRun:
    """Read ``expected`` records of ``partitions`` and take each to its outcome; the first ``warmup``
    records are not timed (data-key cache, connections)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=ctx.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        client_id="keyfan-bench-consumer",
        fetch_max_wait_ms=fetch_max_wait_ms,
    )
    await consumer.start()
    processed = 0
    started = time.time()
    warm_calls = warm_key_calls = 0
    value_bytes = record_bytes = 0
    hooks = hooks or NoHooks()
    try:
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        stall = stall_seconds if stall_seconds is not None else float("inf")
        deadline = time.monotonic() + stall
        while processed < expected:
            batches = await consumer.getmany(timeout_ms=200)
            if not batches and time.monotonic() > deadline:
                raise BenchError(f"stalled: consumer processed {processed}/{expected} of {topic}")
            fetched = [m for messages in batches.values() for m in messages]
            for index, message in enumerate(fetched):
                # what the service's agent gives its pipeline: the records fetched behind this one
                built.pipeline.lookahead = partial(_waiting, fetched, index + 1)
                if processed == warmup:
                    warm_calls, warm_key_calls = kms_calls(decryptor), key_store_calls(decryptor)
                    reset_timers(decryptor)
                    hooks.start()
                    started = time.time()
                await built.pipeline.process(raw_record(message))
                if processed >= warmup:
                    value = len(message.value or b"")
                    value_bytes += value
                    record_bytes += value + _key_and_headers_bytes(message)
                processed += 1
            if batches:
                deadline = time.monotonic() + stall
        seconds = time.time() - started
    finally:
        hooks.stop()
        await consumer.stop()
    measured = expected - warmup
    snapshot = built.metrics.snapshot()
    return ConsumerRun(
        records=measured,
        seconds=seconds,
        records_per_second=rate(measured, seconds),
        outcomes={k: int(str(snapshot[k])) for k in ("decrypted", "access_denied", "dead_lettered")},
        kms_calls=built.metrics.kms_calls - warm_calls,
        warmup_kms_calls=warm_calls,
        crypto_ms_mean=decryptor.timer.mean_ms,
        crypto_share=decryptor.timer.share_of(seconds),
        key_store_calls=key_store_calls(decryptor) - warm_key_calls,
        warmup_key_store_calls=warm_key_calls,
        subject_key_ms=per_record_ms(subject_key_seconds(decryptor), measured),
        subject_key_share=subject_key_seconds(decryptor) / seconds if seconds > 0 else 0.0,
        value_bytes=value_bytes / measured if measured else 0.0,
        record_bytes=record_bytes / measured if measured else 0.0,
        processed=processed,
    )


def records_of(department: str, events: Iterable[DepartmentEvent]) -> int:
    """How many of ``events`` land in ``department``'s partitions."""
    return sum(1 for e in events if e.department == department)


async def run_reader_path(
    ctx: BenchContext,
    decryptor: TimedDecryptor,
    topic: str,
    *,
    source: str,
    expected: int,
    warmup: int,
    hooks: MeasureHooks | None = None,
) -> ConsumerRun:
    """The measured consumer (``READER``'s own pipeline, decrypting with ``decryptor``) over the partitions of
    ``source`` in ``topic``: its own department's records, or another's (to be denied)."""
    built = consumer_pipeline(ctx, READER, decryptor)
    partitions = ctx.registry.get(source).partitions
    return await run_consumer_path(ctx, built, decryptor, topic, partitions, expected, warmup, hooks=hooks)
