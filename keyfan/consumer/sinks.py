"""Faust-backed sinks: the audit topic and the DLQ topic.

Both hand records to the Faust producer; Faust flushes the producer before it commits a source offset,
so an outcome's audit and DLQ records are on the broker before the record that caused them is committed.

The DLQ takes every record the source topic takes: a value too large to copy (the DLQ record carries
more headers than the source record, and the DLQ topic may have a smaller size limit) is replaced by its
coordinates, with ``keyfan-dlq-value: omitted_too_large`` and the original size, instead of being
retried forever.
"""

from __future__ import annotations

from collections.abc import Mapping

import faust
from aiokafka.errors import MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError

from keyfan.consumer.audit import AuditRecord
from keyfan.consumer.records import RawRecord
from keyfan.exceptions import PublishFailed, RecordTooLarge

H_DLQ_REASON = "keyfan-dlq-reason"
H_DLQ_SOURCE_TOPIC = "keyfan-dlq-source-topic"
H_DLQ_SOURCE_PARTITION = "keyfan-dlq-source-partition"
H_DLQ_SOURCE_OFFSET = "keyfan-dlq-source-offset"
H_DLQ_CONSUMER = "keyfan-dlq-consumer"
H_DLQ_VALUE = "keyfan-dlq-value"
H_DLQ_VALUE_BYTES = "keyfan-dlq-value-bytes"
VALUE_OMITTED = "omitted_too_large"
_TOO_LARGE = (MessageSizeTooLargeError, RecordTooLargeError, RecordListTooLargeError)


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
            fut = await self._topic.send(key=self._key, value=record.to_bytes())
            # Acknowledged before the position moves past the record: the position is restored from the
            # table after a crash, so an audit record still in the producer's buffer would be lost.
            await fut
        except Exception as exc:
            raise PublishFailed(f"audit publish failed: {type(exc).__name__}") from exc


class FaustDeadLetterSink:
    def __init__(self, topic: faust.TopicT, department: str) -> None:
        self._topic = topic
        self._department = department

    async def publish(self, record: RawRecord, reason: str) -> None:
        headers = dlq_headers(record, reason, self._department)
        try:
            await self._send(record.key, record.value or b"", headers)
        except RecordTooLarge:
            omitted = [
                (H_DLQ_VALUE, VALUE_OMITTED.encode()),
                (H_DLQ_VALUE_BYTES, str(len(record.value or b"")).encode()),
            ]
            await self._send(record.key, b"", headers + omitted)

    async def _send(self, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        try:
            fut = await self._topic.send(key=key, value=value, headers=headers)
            await fut  # DLQ records are rare: wait for the broker's ack before moving on
        except Exception as exc:
            if _caused_by_size(exc):
                raise RecordTooLarge(f"DLQ record of {len(value)} bytes refused as too large") from exc
            raise PublishFailed(f"DLQ publish failed: {type(exc).__name__}") from exc


def _caused_by_size(exc: BaseException) -> bool:
    """Faust wraps aiokafka's size errors (``ProducerSendError(...) from MessageSizeTooLargeError``)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, _TOO_LARGE):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
