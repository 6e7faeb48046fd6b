"""The Faust app factory shared by every department consumer.

One agent reads every partition of the shared topic (or, with ``own_partitions``, skips records outside
the department's range: a filter, so the group protocol and table co-partitioning stay standard). The
agent is thin: it turns a Faust event into a ``RawRecord`` and awaits ``RecordPipeline.process``, which
returns only with a final outcome. Faust acks an event when the agent asks for the next one, so while a
record is being retried nothing after it is committed.

State lives in one Faust Table, ``state``, keyed by source partition: each value holds the handler's
aggregates for that partition *and* the offset of the last record applied to them. One changelog record
carries both, so after a crash the aggregates and the dedupe mark are restored together, and a
redelivered record (offset <= applied offset) is skipped instead of counted twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import faust
from faust.types import TransportT
from faust.web import Request, Response, View
from prometheus_client import CollectorRegistry

from keyfan.consumer.audit import AuditSink
from keyfan.consumer.denials import Clock, DenialMemory
from keyfan.consumer.faust_fixes import ReseekingTransport
from keyfan.consumer.handler import DomainHandler
from keyfan.consumer.metrics import ConsumerMetrics
from keyfan.consumer.pipeline import (
    APPLIED_OFFSET,
    STATE,
    DeadLetterSink,
    RawRecord,
    RecordPipeline,
    RetryPolicy,
)
from keyfan.consumer.sinks import FaustAuditSink, FaustDeadLetterSink
from keyfan.crypto.ports import Decryptor
from keyfan.exceptions import ConfigError
from keyfan.kafka_auth import broker_credentials
from keyfan.metrics import expose_metrics
from keyfan.settings import ConsumerSettings

STATE_TABLE = "state"


@dataclass
class ConsumerRuntime:
    """Everything a running consumer holds, reachable from tests and from ``/state``."""

    settings: ConsumerSettings
    handler: DomainHandler
    pipeline: RecordPipeline
    metrics: ConsumerMetrics
    denials: DenialMemory
    table: Any  # faust Table: partition (str) -> {"applied_offset": int, "state": {...}}
    own_partitions: frozenset[int]
    skipped_foreign_partitions: int = 0

    def state(self) -> dict[str, Any]:
        slots = {str(k): v for k, v in self.table.items() if isinstance(v, dict)}
        return {
            "department": self.settings.department,
            "consumer_group": self.settings.consumer_group,
            "principal": self.pipeline.principal,
            "own_partitions_only": self.settings.own_partitions,
            "counters": {
                **self.metrics.snapshot(),
                "skipped_foreign_partitions": self.skipped_foreign_partitions,
            },
            "applied_offsets": {p: s[APPLIED_OFFSET] for p, s in sorted(slots.items())},
            "aggregates": self.handler.merge(s[STATE] for s in slots.values()),
            "denied_keys": list(self.denials.active()),
        }


class ConsumerApp(faust.App):
    """A ``faust.App`` that carries its ``ConsumerRuntime`` and re-seeks uncommitted partitions
    (see ``keyfan.consumer.faust_fixes``)."""

    runtime: ConsumerRuntime

    def _new_transport(self) -> TransportT:
        return ReseekingTransport(self.conf.broker_consumer, self)


def create_consumer_app(
    settings: ConsumerSettings,
    handler: DomainHandler,
    *,
    decryptor: Decryptor | None = None,
    principal: str | None = None,
    registry: CollectorRegistry | None = None,
    clock: Clock | None = None,
    topic_partitions: int | None = None,
    audit: AuditSink | None = None,
    dead_letters: DeadLetterSink | None = None,
) -> ConsumerApp:
    """Build a department consumer. Without ``decryptor`` it assumes ``settings.role_arn`` and builds a
    discovery decryptor (network: STS); tests pass a fake decryptor (and in-memory sinks) instead."""
    if handler.department != settings.department:
        raise ConfigError(
            f"handler for {handler.department!r} cannot run as the {settings.department!r} consumer"
        )
    registry_ = settings.registry()
    department = registry_.get(settings.department)
    partitions = topic_partitions or registry_.partition_count
    session = None
    if decryptor is None:
        from keyfan.consumer.identity import consumer_identity

        identity = consumer_identity(settings)
        decryptor, principal, session = identity.decryptor, identity.principal, identity.botocore_session

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
        producer_linger=0.05,
        web_port=settings.web_port,
        datadir=str(settings.data_dir / settings.consumer_group),
        table_standby_replicas=0,
    )
    source = app.topic(
        settings.topic,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        allow_empty=True,
    )
    audit_topic = app.topic(settings.audit_topic, key_serializer="raw", value_serializer="raw")
    dlq_topic = app.topic(settings.dlq_topic, key_serializer="raw", value_serializer="raw", allow_empty=True)
    table = app.Table(STATE_TABLE, partitions=partitions)  # table_key/value_serializer default: json
    metrics = ConsumerMetrics(settings.department, registry)
    denials = DenialMemory(settings.denial_ttl_seconds, **({"clock": clock} if clock else {}))
    observer = getattr(decryptor, "observer", None)
    metrics.watch(
        (lambda: dict(observer.calls)) if observer is not None else dict,
        lambda: len(denials.active()),
    )
    pipeline = RecordPipeline(
        department=settings.department,
        consumer_group=settings.consumer_group,
        principal=principal,
        decryptor=decryptor,
        handler=handler,
        store=table,
        audit=audit or FaustAuditSink(audit_topic, settings.department),
        dead_letters=dead_letters or FaustDeadLetterSink(dlq_topic, settings.department),
        denials=denials,
        metrics=metrics,
        retry=RetryPolicy(settings.retry_initial_seconds, settings.retry_max_seconds),
    )
    runtime = ConsumerRuntime(
        settings=settings,
        handler=handler,
        pipeline=pipeline,
        metrics=metrics,
        denials=denials,
        table=table,
        own_partitions=frozenset(department.partitions),
    )
    app.runtime = runtime

    @app.agent(source, name=f"{settings.department}-records")
    async def records(stream: faust.StreamT[bytes]) -> AsyncIterator[str]:
        async for event in stream.events():
            message = event.message
            if settings.own_partitions and message.partition not in runtime.own_partitions:
                runtime.skipped_foreign_partitions += 1
                yield "skipped"
                continue
            verdict = await pipeline.process(
                RawRecord(
                    topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                    key=message.key,
                    value=message.value,
                    headers=message.headers,
                )
            )
            yield verdict.outcome.value

    async def state_view(view: View, request: Request) -> Response:
        return view.json(runtime.state())

    app.page("/state")(state_view)
    expose_metrics(app, metrics.registry)
    return app
