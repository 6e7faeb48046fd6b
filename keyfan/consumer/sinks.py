"""Faust-backed sinks: the audit topic and the DLQ topic.

Both hand records to the Faust producer; Faust flushes the producer before it commits a source offset,
so an outcome's audit and DLQ records are on the broker before the record that caused them is committed.
"""

from __future__ import annotations

from collections.abc import Mapping

import faust

from keyfan.consumer.audit import AuditRecord
from keyfan.consumer.pipeline import RawRecord
from keyfan.exceptions import PublishFailed

H_DLQ_REASON = "keyfan-dlq-reason"
H_DLQ_SOURCE_TOPIC = "keyfan-dlq-source-topic"
H_DLQ_SOURCE_PARTITION = "keyfan-dlq-source-partition"
H_DLQ_SOURCE_OFFSET = "keyfan-dlq-source-offset"
H_DLQ_CONSUMER = "keyfan-dlq-consumer"


def dlq_headers(record: RawRecord, reason: str, consumer: str) -> list[tuple[str, bytes]]:
    """The original (metadata-only) headers plus why and where from; a replay tool needs nothing else."""
    original = record.headers.items() if isinstance(record.headers, Mapping) else (record.headers or [])
    headers = [(str(k), bytes(v)) for k, v in original if not str(k).startswith("keyfan-dlq-")]
    headers += [
        (H_DLQ_REASON, reason.encode()),
        (H_DLQ_SOURCE_TOPIC, record.topic.encode()),
        (H_DLQ_SOURCE_PARTITION, str(record.partition).encode()),
        (H_DLQ_SOURCE_OFFSET, str(record.offset).encode()),
        (H_DLQ_CONSUMER, consumer.encode()),
    ]
    return headers


class FaustAuditSink:
    def __init__(self, topic: faust.TopicT, department: str) -> None:
        self._topic = topic
        self._key = department.encode()

    async def publish(self, record: AuditRecord) -> None:
        try:
            await self._topic.send(key=self._key, value=record.to_bytes())
        except Exception as exc:
            raise PublishFailed(f"audit publish failed: {type(exc).__name__}") from exc


class FaustDeadLetterSink:
    def __init__(self, topic: faust.TopicT, department: str) -> None:
        self._topic = topic
        self._department = department

    async def publish(self, record: RawRecord, reason: str) -> None:
        try:
            fut = await self._topic.send(
                key=record.key,
                value=record.value or b"",
                headers=dlq_headers(record, reason, self._department),
            )
            await fut  # DLQ records are rare: wait for the broker's ack before moving on
        except Exception as exc:
            raise PublishFailed(f"DLQ publish failed: {type(exc).__name__}") from exc
