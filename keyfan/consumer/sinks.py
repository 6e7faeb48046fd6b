"""Faust-backed sinks: the audit topic and the DLQ topic.

Audit records are handed to the producer without waiting, and acknowledged together when the batch is
settled (``FaustAuditSink.flush``), before the batch's positions reach the table: an audit record still in
the producer's buffer at a crash would otherwise be lost, since positions come back from the table. DLQ
records are rare, and each is acknowledged before its record's outcome is recorded.

The DLQ takes every record the source topic takes: a value too large to copy (the DLQ record carries
more headers than the source record, and the DLQ topic may have a smaller size limit) is replaced by its
coordinates, with ``keyfan-dlq-value: omitted_too_large`` and the original size, instead of being
retried forever.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Any

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
    """Sends without waiting (one awaited produce costs ~140 µs here); ``flush`` awaits the acks.

    Records go to the app's producer directly, not through ``Topic.send``: an audit record is bytes already,
    and Faust's message envelope, serializers and sensors cost more per record than the produce itself.
    The topic is declared (created if missing) before the first record, as ``Topic.send`` would.
    """

    def __init__(self, topic: faust.TopicT, department: str) -> None:
        self._topic = topic
        self._name = topic.get_topic_name()
        self._key = department.encode()
        self._declared = False
        self._sent: list[tuple[bytes, Awaitable[Any]]] = []
        self._unsent: list[bytes] = []  # refused: sent again by the next flush

    async def publish(self, record: AuditRecord) -> None:
        value = record.to_bytes()
        self._sent.append((value, await self._send(value)))

    async def flush(self) -> None:
        while self._unsent:  # a failed send leaves the rest for the next flush
            self._sent.append((self._unsent[0], await self._send(self._unsent[0])))
            self._unsent.pop(0)
        sent, self._sent = self._sent, []
        failed: BaseException | None = None
        for value, ack in sent:
            try:
                await ack
            except Exception as exc:
                self._unsent.append(value)
                failed = exc
        if failed is not None:
            raise PublishFailed(f"audit publish failed: {type(failed).__name__}") from failed

    def discard(self) -> None:
        self._sent.clear()
        self._unsent.clear()

    async def _send(self, value: bytes) -> Awaitable[Any]:
        try:
            if not self._declared:
                await self._topic.maybe_declare()
                self._declared = True
            producer = await self._topic.app.maybe_start_producer()
            ack: Awaitable[Any] = await producer.send(self._name, self._key, value, None, None, None)
        except Exception as exc:  # publish's caller retries its record; flush keeps the value unsent
            raise PublishFailed(f"audit publish failed: {type(exc).__name__}") from exc
        return ack


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
