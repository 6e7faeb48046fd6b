"""The two measured paths, each on the services' own pipelines with an injected codec.

Owner path: a pre-filled SQS queue -> ``keyfan.owner.OwnerRunner``/``OwnerPipeline`` (validate, seal,
encrypt, publish with acks=all, delete) -> a benchmark topic. Records/s run from the start of the runner to
the last SQS delete.

Consumer path: the benchmark topic -> ``keyfan.consumer.RecordPipeline`` (headers, EDK key ARNs, denial
memory, decrypt, context and event-id checks, the department's handler, audit) one record at a time, as
the Faust agent does. Records/s run from the first fetched record after the warm-up to the last outcome.
What differs from the real worker, on both codecs alike: aiokafka instead of Faust's producer/consumer,
a dict instead of the Faust Table, and an audit sink that serialises the audit record but keeps it.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry

from keyfan.consumer import (
    AuditRecord,
    ConsumerMetrics,
    DenialMemory,
    DomainHandler,
    RawRecord,
    RecordPipeline,
    State,
)
from keyfan.envelope import Headers, RecordMetadata
from keyfan.exceptions import PublishFailed
from keyfan.generation import to_message_body
from keyfan.models import DepartmentEvent
from keyfan.owner import OwnerMetrics, OwnerPipeline, OwnerRunner
from keyfan.plugins import handler_for
from keyfan.settings import ConsumerSettings, OwnerSettings
from keyfan.sqs import OutgoingMessage, QueueMessage, SqsQueue
from keyfan_tools.bench.codecs import content_of
from keyfan_tools.bench.context import BenchContext, BenchError
from keyfan_tools.bench.stats import rate
from keyfan_tools.bench.timing import TimedDecryptor, TimedEncryptor, kms_calls

STALL_SECONDS = 60.0


class MeasureHooks(Protocol):
    """Called around the measured window only (after warm-up and set-up): the profiler uses it."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


class _NoHooks:
    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


# The owner's long poll (the service's default is 2 s); only the drain at the end of a run waits for it.
POLL_WAIT_SECONDS = 1
FETCH_MAX_WAIT_MS = 500  # aiokafka's default


def _owner_default(name: str) -> Any:
    return OwnerSettings.model_fields[name].default


def _consumer_default(name: str) -> Any:
    return ConsumerSettings.model_fields[name].default


# ------------------------------------------------------------------------------------------- broker
async def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="keyfan-bench")
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, replication_factor=1)])
    finally:
        await admin.close()


async def delete_topic(bootstrap: str, name: str) -> None:
    """Free the broker's memory (Tansu keeps every record in RAM); best effort."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="keyfan-bench")
    await admin.start()
    try:
        await admin.delete_topics([name])
    except KafkaError:
        pass
    finally:
        await admin.close()


class AiokafkaPublisher:
    """The owner's ``Publisher`` on a plain aiokafka producer (acks=all, no idempotence: Tansu cannot)."""

    def __init__(self, bootstrap: str) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=False, client_id="keyfan-bench-owner"
        )
        self.last_ack = 0.0

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def publish(self, *, topic: str, partition: int, key: bytes, value: bytes, headers: Headers) -> int:
        try:
            metadata = await self._producer.send_and_wait(
                topic, value=value, key=key, partition=partition, headers=headers
            )
        except KafkaError as exc:
            raise PublishFailed(f"broker did not acknowledge: {type(exc).__name__}") from exc
        self.last_ack = time.time()
        return int(metadata.offset)


class CountingQueue:
    """The owner's ``WorkQueue`` around SQS, counting deletes (a delete ends a message's journey) of the
    events this run sent; a stray message left by an earlier phase is processed but not counted."""

    def __init__(self, inner: SqsQueue, expected: Collection[str] | None = None) -> None:
        self.inner = inner
        self.expected = frozenset(expected) if expected is not None else None
        self.deleted = 0
        self.strays = 0
        self.last_delete = 0.0

    def receive(
        self, *, max_messages: int = 10, wait_seconds: int = 2, visibility_timeout: int | None = None
    ) -> list[QueueMessage]:
        return self.inner.receive(
            max_messages=max_messages, wait_seconds=wait_seconds, visibility_timeout=visibility_timeout
        )

    def delete(self, message: QueueMessage) -> None:
        self.inner.delete(message)
        self._count([message])

    def delete_batch(self, messages: Sequence[QueueMessage]) -> dict[str, str]:
        failed = self.inner.delete_batch(messages)
        self._count([m for m in messages if m.message_id not in failed])
        return failed

    def _count(self, deleted: Sequence[QueueMessage]) -> None:
        ours = [m for m in deleted if self.expected is None or _event_id(m.body) in self.expected]
        self.strays += len(deleted) - len(ours)
        if ours:
            self.deleted += len(ours)
            self.last_delete = time.time()

    def change_visibility(self, message: QueueMessage, seconds: int) -> None:
        self.inner.change_visibility(message, seconds)


def _event_id(body: str) -> str | None:
    try:
        found = json.loads(body).get("event_id")
    except (ValueError, AttributeError):
        return None
    return str(found) if found is not None else None


class PreloadedQueue:
    """A ``WorkQueue`` holding already-received messages: the owner pipeline measured without SQS."""

    def __init__(self, events: Sequence[DepartmentEvent]) -> None:
        self._messages = [
            QueueMessage(message_id=str(e.event_id), receipt_handle=str(e.event_id), body=to_message_body(e))
            for e in events
        ]
        self._messages.reverse()
        self._lock = threading.Lock()
        self.deleted = 0
        self.last_delete = 0.0

    def receive(
        self, *, max_messages: int = 10, wait_seconds: int = 2, visibility_timeout: int | None = None
    ) -> list[QueueMessage]:
        with self._lock:
            batch = [self._messages.pop() for _ in range(min(max_messages, len(self._messages)))]
        if not batch:
            time.sleep(0.01)  # an empty long poll
        return batch

    def delete(self, message: QueueMessage) -> None:
        self.deleted += 1
        self.last_delete = time.time()

    def delete_batch(self, messages: Sequence[QueueMessage]) -> dict[str, str]:
        self.deleted += len(messages)
        self.last_delete = time.time()
        return {}

    def change_visibility(self, message: QueueMessage, seconds: int) -> None:
        if seconds == 0:
            with self._lock:
                self._messages.append(message)


def fill_queue(queue: SqsQueue, events: Sequence[DepartmentEvent]) -> dict[str, float]:
    """Send ``events`` to SQS as the generator does; wall-clock send time per event id."""
    sent: dict[str, float] = {}
    for start in range(0, len(events), 10):
        chunk = events[start : start + 10]
        now = time.time()
        result = queue.send_batch([OutgoingMessage(to_message_body(e)) for e in chunk])
        if result.failed:
            raise BenchError(f"SQS refused {len(result.failed)} benchmark messages")
        sent.update({str(e.event_id): now for e in chunk})
    return sent


# ------------------------------------------------------------------------------------------- owner
@dataclass
class OwnerRun:
    records: int
    seconds: float
    records_per_second: float
    kms_calls: int
    warmup_kms_calls: int
    encrypt_ms_mean: float
    encrypt_share: float  # encrypt time (summed over threads) / wall time


def owner_runner(
    ctx: BenchContext,
    encryptor: TimedEncryptor,
    publisher: AiokafkaPublisher,
    queue: CountingQueue | PreloadedQueue,
    topic: str,
    *,
    wait_seconds: int,
) -> OwnerRunner:
    """The owner's own pipeline and runner with the service's default settings, around bench I/O."""
    pipeline = OwnerPipeline(
        registry=ctx.registry,
        encryptor=encryptor,
        publisher=publisher,
        queue=queue,
        dead_letters=ctx.queue("owner", dead_letters=True),
        topic=topic,
        max_body_bytes=_owner_default("max_body_bytes"),
        visibility_timeout=_owner_default("visibility_timeout_seconds"),
        metrics=OwnerMetrics(CollectorRegistry()),
    )
    return OwnerRunner(
        pipeline,
        queue,
        concurrency=_owner_default("poll_concurrency"),
        wait_seconds=wait_seconds,
        visibility_timeout=_owner_default("visibility_timeout_seconds"),
    )


async def _owner_until(
    ctx: BenchContext,
    encryptor: TimedEncryptor,
    publisher: AiokafkaPublisher,
    topic: str,
    queue: CountingQueue | PreloadedQueue,
    count: int,
    hooks: MeasureHooks | None = None,
) -> tuple[float, float]:
    """Run an owner worker until ``count`` messages are deleted; (start, last delete) wall times."""
    runner = owner_runner(ctx, encryptor, publisher, queue, topic, wait_seconds=POLL_WAIT_SECONDS)
    hooks = hooks or _NoHooks()
    hooks.start()
    started = time.time()
    runner.start()
    try:
        await _wait_for(lambda: queue.deleted >= count, f"owner published {queue.deleted}/{count}")
    finally:
        hooks.stop()
        await runner.drain(30.0)
    return started, queue.last_delete


async def _wait_for(done: Callable[[], bool], what: str, stall: float = STALL_SECONDS) -> None:
    deadline = time.monotonic() + stall
    while not done():
        if time.monotonic() > deadline:
            raise BenchError(f"stalled: {what}")
        await asyncio.sleep(0.02)


async def run_owner_path(
    ctx: BenchContext,
    encryptor: TimedEncryptor,
    topic: str,
    events: Sequence[DepartmentEvent],
    warmup: Sequence[DepartmentEvent],
    *,
    via_sqs: bool = True,
    hooks: MeasureHooks | None = None,
) -> OwnerRun:
    """Warm up (caches, connections, credentials), then measure the owner draining ``events``: from SQS
    (filled beforehand, untimed) or, with ``via_sqs=False``, from messages it has already received."""
    generator = ctx.queue("generator") if via_sqs else None

    async def queue_of(batch: Sequence[DepartmentEvent]) -> CountingQueue | PreloadedQueue:
        if generator is None:
            return PreloadedQueue(batch)
        sent = await asyncio.to_thread(fill_queue, generator, batch)
        return CountingQueue(ctx.queue("owner"), sent)

    publisher = AiokafkaPublisher(ctx.bootstrap_servers)
    await publisher.start()
    try:
        if warmup:
            queue = await queue_of(warmup)
            await _owner_until(ctx, encryptor, publisher, topic, queue, len(warmup))
        warm_calls = kms_calls(encryptor)
        encryptor.timer.reset()
        queue = await queue_of(events)
        started, ended = await _owner_until(ctx, encryptor, publisher, topic, queue, len(events), hooks)
    finally:
        await publisher.stop()
    seconds = ended - started
    return OwnerRun(
        records=len(events),
        seconds=seconds,
        records_per_second=rate(len(events), seconds),
        kms_calls=kms_calls(encryptor) - warm_calls,
        warmup_kms_calls=warm_calls,
        encrypt_ms_mean=encryptor.timer.mean_ms,
        encrypt_share=encryptor.timer.seconds / seconds if seconds > 0 else 0.0,
    )


# ------------------------------------------------------------------------------------------- consumer
class MemoryAuditSink:
    """Serialises each audit record as the Faust sink does, and keeps a count instead of producing it."""

    def __init__(self) -> None:
        self.records = 0
        self.bytes = 0

    async def publish(self, record: AuditRecord) -> None:
        self.bytes += len(record.to_bytes())
        self.records += 1


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
    metrics = ConsumerMetrics(department, CollectorRegistry())
    denials = DenialMemory(_consumer_default("denial_ttl_seconds"))
    observer = decryptor.observer
    metrics.watch(
        (lambda: dict(observer.calls)) if observer is not None else dict, lambda: len(denials.active())
    )
    audit, dead_letters = MemoryAuditSink(), MemoryDeadLetters()
    handler = RecordingHandler(handler_for(department))  # the app's own, through its entry point
    pipeline = RecordPipeline(
        department=department,
        consumer_group=f"keyfan-bench-{department}",
        principal=ctx.principal(department),
        registry=ctx.registry,
        decryptor=decryptor,
        handler=handler,
        store={},
        audit=audit,
        dead_letters=dead_letters,
        denials=denials,
        metrics=metrics,
        accepted_contents=frozenset({content_of(decryptor)}),
    )
    return ConsumerPipeline(pipeline, metrics, audit, dead_letters, handler)


@dataclass
class ConsumerRun:
    records: int
    seconds: float
    records_per_second: float
    outcomes: dict[str, int]
    kms_calls: int
    warmup_kms_calls: int
    decrypt_ms_mean: float
    decrypt_share: float
    value_bytes: float
    record_bytes: float
    processed: int  # warm-up included: what ``outcomes`` counts


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
    warm_calls = 0
    value_bytes = record_bytes = 0
    hooks = hooks or _NoHooks()
    try:
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        stall = stall_seconds if stall_seconds is not None else float("inf")
        deadline = time.monotonic() + stall
        while processed < expected:
            batches = await consumer.getmany(timeout_ms=200)
            if not batches and time.monotonic() > deadline:
                raise BenchError(f"stalled: consumer processed {processed}/{expected} of {topic}")
            for messages in batches.values():
                for message in messages:
                    if processed == warmup:
                        warm_calls = kms_calls(decryptor)
                        decryptor.timer.reset()
                        hooks.start()
                        started = time.time()
                    headers = list(message.headers)
                    await built.pipeline.process(
                        RawRecord(
                            topic=message.topic,
                            partition=message.partition,
                            offset=message.offset,
                            key=message.key,
                            value=message.value,
                            headers=headers,
                        )
                    )
                    if processed >= warmup:
                        value = len(message.value or b"")
                        value_bytes += value
                        record_bytes += (
                            value + len(message.key or b"") + sum(len(k) + len(v) for k, v in message.headers)
                        )
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
        decrypt_ms_mean=decryptor.timer.mean_ms,
        decrypt_share=decryptor.timer.seconds / seconds if seconds > 0 else 0.0,
        value_bytes=value_bytes / measured if measured else 0.0,
        record_bytes=record_bytes / measured if measured else 0.0,
        processed=processed,
    )
