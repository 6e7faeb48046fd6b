"""The Faust app factory shared by every department consumer.

One agent reads every partition of the shared topic (or, with ``own_partitions``, skips records outside
the department's range: a filter, so the group protocol and table co-partitioning stay standard). The
agent is thin: it turns a Faust event into a ``RawRecord`` and awaits ``RecordPipeline.process``.

State lives in one Faust Table, ``state``. Under each source partition's number it holds one *slot*:
the handler's aggregates, the outcome counts and the partition's position (the last offset with a final
outcome), so one changelog record carries all three. The position, not Faust's committed offset, says
where to read: after every assignment and recovery the consumer seeks there (``faust_fixes``), records
are processed only once that has happened, and a record that arrives after a gap sends the consumer back
(``position``). Event ids applied recently are kept in the same table for deduplication (``dedupe``).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import AsyncIterator, MutableMapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, cast

import faust
from faust.types import TP, ChannelT, TransportT
from faust.web import Request, Response, View
from prometheus_client import CollectorRegistry

from keyfan.consumer.audit import AuditSink
from keyfan.consumer.denials import Clock, DenialMemory
from keyfan.consumer.faust_fixes import QuietMonitor, ReseekingConsumer, ReseekingTransport, waiting_messages
from keyfan.consumer.handler import DomainHandler
from keyfan.consumer.logfields import log_event
from keyfan.consumer.metrics import ConsumerMetrics
from keyfan.consumer.outcomes import Classification
from keyfan.consumer.pipeline import RecordPipeline
from keyfan.consumer.position import OUTCOMES, POSITION, STATE, Reseeks, SeekAction
from keyfan.consumer.records import DeadLetterSink, RawRecord
from keyfan.consumer.sinks import FaustAuditSink, FaustDeadLetterSink
from keyfan.consumer.writebehind import WriteBehindTable
from keyfan.crypto.ports import Decryptor
from keyfan.crypto.subjectkeys import SubjectKeys
from keyfan.departments import DepartmentRegistry
from keyfan.exceptions import ConfigError, Interrupted
from keyfan.kafka_auth import broker_credentials
from keyfan.metrics import expose_metrics
from keyfan.retry import RetryPolicy
from keyfan.settings import ConsumerSettings

STATE_TABLE = "state"
# Records the pipeline looks ahead at, on a subject-key miss, to load their subjects' keys in one go.
LOOKAHEAD_RECORDS = 200
logger = logging.getLogger("keyfan.consumer")


@dataclass
class ConsumerRuntime:
    """Everything a running consumer holds, reachable from tests and from ``/state``.

    It also owns the "may we process?" switch: records are processed only after the positions were
    restored from the table for the current assignment (``positions_restored``), never during a rebalance
    or a table recovery, when Faust may hand over records fetched from a stale position.
    """

    settings: ConsumerSettings
    handler: DomainHandler
    pipeline: RecordPipeline
    metrics: ConsumerMetrics
    denials: DenialMemory
    table: Any  # faust Table: partition (str) -> slot (keyfan.consumer.position); event:<id> -> [p, o]
    batch: WriteBehindTable  # the pipeline's view of the table: the current batch's writes, not yet applied
    own_partitions: frozenset[int]
    partitions: int  # of the source topic: the slots' keys are 0 .. partitions - 1
    reseeks: Reseeks = field(default_factory=Reseeks)
    skipped_foreign_partitions: int = 0
    ignored_until_restored: int = 0
    synced: bool = False

    def tracks(self, partition: int) -> bool:
        """Whether this consumer keeps a position for the partition (``own_partitions`` skips others)."""
        return not self.settings.own_partitions or partition in self.own_partitions

    def on_rebalance_start(self) -> None:
        self.synced = False
        self.pipeline.interrupt()

    async def end_batch(self) -> None:
        """Make the batch's outcomes durable: their audit records acknowledged, then the table written
        (each key once). A batch cut by a rebalance or shutdown is abandoned: its records are read again."""
        if not self.synced:
            self.abandon_batch()
            return
        try:
            await self.pipeline.settle()
        except Interrupted:
            self.abandon_batch()
            return
        self.batch.apply()

    def abandon_batch(self) -> None:
        self.batch.discard()
        self.pipeline.audit.discard()

    def committable_offset(self, partition: int) -> int | None:
        """What the group may commit for a partition: the offset after its position (None: nothing yet)."""
        slot = self.table.get(str(partition))
        return int(slot[POSITION]) + 1 if slot else None

    def positions_restored(self) -> None:
        self.synced = True
        self.reseeks.reset()
        self.pipeline.resume()

    def state(self) -> dict[str, Any]:
        # The partitions' slots only: the table also holds the dedupe window (up to 100,000 event ids), and
        # /state is polled.
        found = ((str(p), self.table.get(str(p))) for p in range(self.partitions))
        slots = {key: slot for key, slot in found if isinstance(slot, dict)}
        outcomes: Counter[str] = Counter()
        for slot in slots.values():
            outcomes.update(slot.get(OUTCOMES, {}))
        return {
            "department": self.settings.department,
            "consumer_group": self.settings.consumer_group,
            "principal": self.pipeline.principal,
            "own_partitions_only": self.settings.own_partitions,
            "counters": {
                **self.metrics.snapshot(),
                "skipped_foreign_partitions": self.skipped_foreign_partitions,
                "ignored_until_restored": self.ignored_until_restored,
            },
            # Persisted with the state (survive restarts): one outcome per record up to each position.
            "outcomes": dict(sorted(outcomes.items())),
            "positions": {p: s[POSITION] for p, s in sorted(slots.items())},
            "dedupe_window_events": self.pipeline.events.size(),
            "aggregates": self.handler.merge(s[STATE] for s in slots.values()),
            "denied_keys": list(self.denials.active()),
        }


class ConsumerApp(faust.App):
    """A ``faust.App`` that carries its ``ConsumerRuntime``, seeks source partitions to the positions kept
    in its table (see ``keyfan.consumer.faust_fixes``), and interrupts a record's retries when a
    rebalance or a shutdown begins, so neither waits on an outage."""

    runtime: ConsumerRuntime

    def _new_transport(self) -> TransportT:
        return ReseekingTransport(self.conf.broker_consumer, self)

    async def reseek(self, tp: TP, offset: int) -> None:
        """Fetch ``tp`` again from ``offset``: records before the one delivered were lost on the way."""
        consumer = self.consumer
        if not isinstance(consumer, ReseekingConsumer):
            raise ConfigError(f"the consumer app runs on {type(consumer).__name__}, not ReseekingConsumer")
        await consumer.reseek(tp, offset)

    def on_rebalance_start(self) -> None:
        if hasattr(self, "runtime"):
            self.runtime.on_rebalance_start()
        super().on_rebalance_start()

    async def on_stop(self) -> None:
        if hasattr(self, "runtime"):
            self.runtime.on_rebalance_start()
        await super().on_stop()


def kms_calls(decryptors: Sequence[Decryptor]) -> dict[str, int]:
    """KMS calls by operation over the decryptors' observers (v1 and v2 share one: counted once)."""
    observers = {id(o): o for d in decryptors if (o := getattr(d, "observer", None)) is not None}
    total: Counter[str] = Counter()
    for observer in observers.values():
        total.update(observer.calls)
    return dict(total)


def record_pipeline(
    settings: ConsumerSettings,
    handler: DomainHandler,
    *,
    registry: DepartmentRegistry,
    decryptors: Sequence[Decryptor],
    principal: str | None,
    store: MutableMapping[str, Any],
    audit: AuditSink,
    dead_letters: DeadLetterSink,
    metrics_registry: CollectorRegistry | None = None,
    clock: Clock | None = None,
    subject_keys: SubjectKeys | None = None,
) -> RecordPipeline:
    """A consumer's record pipeline wired from its settings: the one wiring the service and the benchmark
    share (the benchmark passes its own store, sinks and decryptors)."""
    metrics = ConsumerMetrics(settings.department, metrics_registry)
    denials = DenialMemory(settings.denial_ttl_seconds, **({"clock": clock} if clock else {}))
    metrics.watch(partial(kms_calls, decryptors), lambda: len(denials.active()))
    if subject_keys is not None:
        metrics.watch_key_store(subject_keys.store.table_calls)
    return RecordPipeline(
        department=settings.department,
        consumer_group=settings.consumer_group,
        principal=principal,
        registry=registry,
        decryptors=decryptors,
        handler=handler,
        store=store,
        audit=audit,
        dead_letters=dead_letters,
        denials=denials,
        metrics=metrics,
        retry=RetryPolicy(
            initial_seconds=settings.retry_initial_seconds,
            max_seconds=settings.retry_max_seconds,
            max_unexpected_attempts=settings.unexpected_max_attempts,
        ),
        dedupe_window_events=settings.dedupe_window_events,
        subject_keys=subject_keys,
    )


def source_topic(app: faust.App, settings: ConsumerSettings) -> faust.TopicT:
    """The shared topic as the consumer reads it: raw bytes, empty values allowed (they are dead-lettered)."""
    return app.topic(
        settings.topic,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        allow_empty=True,
    )


def create_consumer_app(
    settings: ConsumerSettings,
    handler: DomainHandler,
    *,
    decryptors: Sequence[Decryptor] | None = None,
    principal: str | None = None,
    registry: CollectorRegistry | None = None,
    clock: Clock | None = None,
    topic_partitions: int | None = None,
    audit: AuditSink | None = None,
    dead_letters: DeadLetterSink | None = None,
    subject_keys: SubjectKeys | None = None,
) -> ConsumerApp:
    """Build a department consumer. Without ``decryptors`` it assumes ``settings.role_arn`` and builds the
    discovery decryptors of wire v2 and v1 and its subject keys (network: STS); tests pass fakes (and
    in-memory sinks), and subject keys or none (personal fields then arrive withheld)."""
    if handler.department != settings.department:
        raise ConfigError(
            f"handler for {handler.department!r} cannot run as the {settings.department!r} consumer"
        )
    registry_ = settings.registry()
    department = registry_.get(settings.department)
    partitions = topic_partitions or registry_.partition_count
    session = None
    if decryptors is None:
        from keyfan.consumer.identity import consumer_identity

        identity = consumer_identity(settings)
        decryptors, principal, session = identity.decryptors, identity.principal, identity.botocore_session
        subject_keys = identity.subject_keys

    app = ConsumerApp(
        settings.consumer_group,
        broker=settings.faust_broker,
        store="memory://",
        autodiscover=False,
        topic_partitions=partitions,
        topic_replication_factor=settings.replication_factor,
        broker_credentials=broker_credentials(settings, session),
        topic_disable_leader=True,
        broker_session_timeout=settings.broker_session_timeout,
        broker_heartbeat_interval=settings.broker_heartbeat_interval,
        consumer_auto_offset_reset="earliest",
        producer_linger=0.0,  # nothing waits for a fuller producer batch: a batch of records ends when idle
        web_port=settings.web_port,
        datadir=str(settings.data_dir / settings.consumer_group),
        table_standby_replicas=0,
        Monitor=QuietMonitor,
    )
    source = source_topic(app, settings)
    audit_topic = app.topic(settings.audit_topic, key_serializer="raw", value_serializer="raw")
    dlq_topic = app.topic(settings.dlq_topic, key_serializer="raw", value_serializer="raw", allow_empty=True)
    table = app.Table(STATE_TABLE, partitions=partitions)  # table_key/value_serializer default: json
    batch = WriteBehindTable(table)
    pipeline = record_pipeline(
        settings,
        handler,
        registry=registry_,
        decryptors=decryptors,
        principal=principal,
        store=batch,
        audit=audit or FaustAuditSink(audit_topic, settings.department),
        dead_letters=dead_letters or FaustDeadLetterSink(dlq_topic, settings.department),
        metrics_registry=registry,
        clock=clock,
        subject_keys=subject_keys,
    )
    metrics, denials = pipeline.metrics, pipeline.denials
    runtime = ConsumerRuntime(
        settings=settings,
        handler=handler,
        pipeline=pipeline,
        metrics=metrics,
        denials=denials,
        table=table,
        batch=batch,
        own_partitions=frozenset(department.partitions),
        partitions=partitions,
    )
    app.runtime = runtime

    @app.agent(source, name=f"{settings.department}-records")
    async def records(stream: faust.StreamT[bytes]) -> AsyncIterator[str]:
        # A batch is what arrived together: it ends when nothing more is waiting (so an idle consumer adds
        # no latency) or at ``batch_max_records``. Its outcomes reach the table in ``end_batch``.
        in_batch = 0
        waiting = cast(ChannelT, stream.channel).queue  # what Faust has fetched for this agent, not yet read
        # The pipeline looks ahead there to load many subjects' keys in one table call.
        runtime.pipeline.lookahead = lambda: [
            raw_record(m) for m in waiting_messages(waiting, LOOKAHEAD_RECORDS)
        ]
        async for event in stream.events():
            message = event.message
            if not runtime.tracks(message.partition):
                runtime.skipped_foreign_partitions += 1
                outcome = "skipped"
            elif not runtime.synced or app.in_recovery:
                # Fetched from a position the table has not confirmed; it is read again after the seek.
                runtime.ignored_until_restored += 1
                outcome = "ignored"
            else:
                outcome = await _process(app, runtime, raw_record(message))
                in_batch += 1
            if in_batch and (in_batch >= settings.batch_max_records or waiting.empty()):
                await runtime.end_batch()
                in_batch = 0
            yield outcome

    async def state_view(view: View, request: Request) -> Response:
        return view.json(runtime.state())

    app.page("/state")(state_view)
    expose_metrics(app, metrics.registry)
    return app


def raw_record(message: Any) -> RawRecord:
    """A Faust message as the pipeline takes it."""
    return RawRecord(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        headers=message.headers,
    )


async def _process(app: ConsumerApp, runtime: ConsumerRuntime, record: RawRecord) -> str:
    """One record through the pipeline; a gap sends the consumer back to the partition's position."""
    try:
        verdict = await runtime.pipeline.process(record)
    except Interrupted:
        runtime.abandon_batch()
        return "interrupted"
    if isinstance(verdict, Classification):
        runtime.reseeks.healed(record.partition)
        return verdict.outcome.value
    await runtime.end_batch()  # what came before the gap is done: durable before the consumer seeks
    action = runtime.reseeks.on_gap(verdict)
    fields = {"partition": verdict.partition, "expected": verdict.expected, "offset": verdict.offset}
    if action is SeekAction.SEEK:
        log_event(logger, logging.WARNING, "position_gap_reseek", **fields)
        try:
            await app.reseek(TP(record.topic, record.partition), verdict.expected)
        except Exception as exc:  # revoked meanwhile: the rebalance seeks every partition anyway
            log_event(logger, logging.WARNING, "position_gap_seek_failed", error=type(exc).__name__, **fields)
        return "gap"
    if action is SeekAction.STEP_OVER:
        # The same offsets stayed missing through every seek: they are not in the log.
        log_event(logger, logging.WARNING, "offset_hole_stepped_over", **fields)
        runtime.pipeline.log_start[record.partition] = record.offset
        return await _process(app, runtime, record)
    return "gap"
