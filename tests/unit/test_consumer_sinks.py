"""The DLQ sink takes every record the source topic takes: a value too large to copy leaves its
coordinates instead of failing forever; any other send failure is an outage (retried by the pipeline).
The audit sink sends without waiting and acknowledges a batch at ``flush``, sending a refused record again."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError
from faust.exceptions import ProducerSendError

from keyfan.consumer.audit import AuditRecord
from keyfan.consumer.outcomes import Outcome
from keyfan.consumer.records import RawRecord
from keyfan.consumer.sinks import FaustAuditSink, FaustDeadLetterSink
from keyfan.exceptions import PublishFailed

RECORD = RawRecord("keyfan.events", 2, 41, b"k", b"x" * 2048, [("keyfan-event-id", b"e1")])


class FakeTopic:
    """Refuses values over ``limit`` bytes the way Faust does (wrapping aiokafka's error)."""

    def __init__(self, limit: int, error: type[Exception] = MessageSizeTooLargeError) -> None:
        self.limit = limit
        self.error = error
        self.sent: list[dict[str, Any]] = []

    async def send(self, **kwargs: Any) -> asyncio.Future[None]:
        if len(kwargs["value"]) > self.limit:
            try:
                raise self.error()
            except Exception as exc:
                raise ProducerSendError(f"Error while sending: {exc!r}") from exc
        self.sent.append(kwargs)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


async def test_a_value_that_fits_is_copied_with_its_reason_and_coordinates() -> None:
    topic = FakeTopic(limit=1 << 20)
    await FaustDeadLetterSink(topic, "sales").publish(RECORD, "bad_tag")  # type: ignore[arg-type]
    [sent] = topic.sent
    headers = dict(sent["headers"])
    assert sent["value"] == RECORD.value
    assert headers["keyfan-dlq-reason"] == b"bad_tag" and headers["keyfan-dlq-source-offset"] == b"41"
    assert "keyfan-dlq-value" not in headers


async def test_a_value_too_large_to_copy_is_dead_lettered_as_its_coordinates() -> None:
    topic = FakeTopic(limit=1024)
    await FaustDeadLetterSink(topic, "sales").publish(RECORD, "bad_ciphertext")  # type: ignore[arg-type]
    [sent] = topic.sent
    headers = dict(sent["headers"])
    assert sent["value"] == b""
    assert headers["keyfan-dlq-value"] == b"omitted_too_large"
    assert headers["keyfan-dlq-value-bytes"] == b"2048"
    assert (headers["keyfan-dlq-source-partition"], headers["keyfan-dlq-source-offset"]) == (b"2", b"41")


async def test_a_broker_outage_is_a_publish_failure_to_retry() -> None:
    topic = FakeTopic(limit=0, error=KafkaConnectionError)
    with pytest.raises(PublishFailed) as failed:
        await FaustDeadLetterSink(topic, "sales").publish(RECORD, "bad_tag")  # type: ignore[arg-type]
    assert type(failed.value) is PublishFailed and topic.sent == []


class AckLaterTopic:
    """A topic whose app's producer hands back an ack future per send, resolved (or failed) by the test."""

    def __init__(self) -> None:
        self.acks: list[tuple[bytes, asyncio.Future[None]]] = []
        self.declared = 0
        self.app = self

    def get_topic_name(self) -> str:
        return "keyfan.audit"

    async def maybe_declare(self) -> None:
        self.declared += 1

    async def maybe_start_producer(self) -> AckLaterTopic:
        return self

    async def send(self, topic: str, key: bytes, value: bytes, *args: Any) -> asyncio.Future[None]:
        assert (topic, key) == ("keyfan.audit", b"sales")
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.acks.append((value, ack))
        return ack


def _audit(n: int) -> AuditRecord:
    return AuditRecord(
        consumer_department="sales",
        consumer_group="g",
        record_department="sales",
        principal=None,
        event_id=f"e{n}",
        topic="t",
        partition=0,
        offset=n,
        key_arn=None,
        outcome=Outcome.DECRYPTED,
        reason="ok",
    )


async def test_audit_records_are_sent_without_waiting_and_flush_waits_for_every_ack() -> None:
    topic = AckLaterTopic()
    sink = FaustAuditSink(topic, "sales")  # type: ignore[arg-type]
    for n in range(3):
        await sink.publish(_audit(n))  # returns at once: nothing acknowledged yet
    assert len(topic.acks) == 3 and topic.declared == 1  # declared once, before the first record
    flushed = asyncio.ensure_future(sink.flush())
    await asyncio.sleep(0)
    assert not flushed.done()  # waits for the acks
    for _, ack in topic.acks:
        ack.set_result(None)
    await flushed


async def test_an_unacknowledged_audit_record_is_sent_again_by_the_next_flush() -> None:
    topic = AckLaterTopic()
    sink = FaustAuditSink(topic, "sales")  # type: ignore[arg-type]
    await sink.publish(_audit(0))
    await sink.publish(_audit(1))
    topic.acks[0][1].set_result(None)
    topic.acks[1][1].set_exception(KafkaConnectionError())
    with pytest.raises(PublishFailed):
        await sink.flush()
    # the refused record (and only it) goes again with the next flush
    retry = asyncio.ensure_future(sink.flush())
    await asyncio.sleep(0)
    assert [value for value, _ in topic.acks[2:]] == [topic.acks[1][0]]
    topic.acks[2][1].set_result(None)
    await retry
    # an abandoned batch forgets what it sent
    await sink.publish(_audit(2))
    sink.discard()
    await sink.flush()  # nothing to wait for
