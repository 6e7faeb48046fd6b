"""The owner pipeline with fakes: every failure kind reaches the right outcome, and nothing is unaccounted."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import pytest
from pydantic import ValidationError

from keyfan.crypto import Encrypted
from keyfan.departments import DepartmentRegistry
from keyfan.envelope import (
    CONTENT_ESDK,
    H_CONTENT,
    H_DEPARTMENT,
    H_EVENT_ID,
    H_KEY_ARN,
    Binding,
    Headers,
    RecordMetadata,
)
from keyfan.exceptions import AccessDenied, KeyServiceUnavailable, PublishFailed, QueueUnavailable
from keyfan.generation import generate_events, to_message_body
from keyfan.models import entity_key
from keyfan.owner import (
    MessageOutcome,
    OwnerMetrics,
    OwnerPipeline,
    OwnerRunner,
    RetryPolicy,
    accounted,
    key_arns_for,
)
from keyfan.routing import partition_for, record_key
from keyfan.settings import OwnerSettings
from keyfan.sqs import QueueMessage

REGISTRY = DepartmentRegistry.from_mapping(
    {
        "department": [
            {"name": "sales", "partitions": [0, 1, 2], "key_alias": "alias/s", "consumer_identity": "s"},
            {"name": "finance", "partitions": [3, 4, 5], "key_alias": "alias/f", "consumer_identity": "f"},
        ]
    }
)
TOPIC = "keyfan.events"


class FakeEncryptor:
    """Reverses the bytes (so plaintext never appears), or raises the scripted errors first."""

    def __init__(self, errors: list[Exception] | None = None) -> None:
        self.errors = list(errors or [])
        self.contexts: list[Mapping[str, str]] = []
        self.bindings: list[Binding] = []

    def encrypt_cached(self, binding: Binding, plaintext: bytes) -> Encrypted | None:
        return None  # as a KMS call or an SDK message: the pipeline goes to a thread

    def encrypt(self, binding: Binding, plaintext: bytes) -> Encrypted:
        if self.errors:
            raise self.errors.pop(0)
        self.contexts.append(binding.encryption_context())
        self.bindings.append(binding)
        arn = f"arn:aws:kms:r:1:alias/{binding.department}"
        return Encrypted(ciphertext=b"ENC" + plaintext[::-1], key_arn=arn)


@dataclass
class Record:
    topic: str
    partition: int
    key: bytes
    value: bytes
    headers: Headers


class FakePublisher:
    def __init__(self, errors: list[Exception] | None = None, gate: asyncio.Event | None = None) -> None:
        self.errors = list(errors or [])
        self.records: list[Record] = []
        self.gate = gate

    async def publish(self, *, topic: str, partition: int, key: bytes, value: bytes, headers: Headers) -> int:
        if self.gate is not None:
            await self.gate.wait()
        if self.errors:
            raise self.errors.pop(0)
        self.records.append(Record(topic, partition, key, value, headers))
        return len(self.records) - 1


@dataclass
class FakeQueue:
    messages: list[QueueMessage] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    visibility: list[tuple[str, int]] = field(default_factory=list)
    dead: list[tuple[str, str, str]] = field(default_factory=list)
    fail_delete: bool = False
    batches: list[int] = field(default_factory=list)
    fail_dlq: bool = False

    def receive(
        self, *, max_messages: int = 10, wait_seconds: int = 2, visibility_timeout: int | None = None
    ):
        batch, self.messages = self.messages[:max_messages], self.messages[max_messages:]
        return batch

    def delete(self, message: QueueMessage) -> None:
        if self.fail_delete:
            raise QueueUnavailable("down")
        self.deleted.append(message.message_id)

    def delete_batch(self, messages):
        if self.fail_delete:
            raise QueueUnavailable("down")
        self.batches.append(len(messages))
        self.deleted += [m.message_id for m in messages]
        return {}

    def change_visibility(self, message: QueueMessage, seconds: int) -> None:
        self.visibility.append((message.message_id, seconds))

    def send_dead_letter(self, message: QueueMessage, *, reason: str) -> str:
        if self.fail_dlq:
            raise QueueUnavailable("dlq down")
        self.dead.append((message.message_id, reason, message.body))
        return "dlq-" + message.message_id


def _message(body: str, n: int = 0, receive_count: int = 1) -> QueueMessage:
    return QueueMessage(message_id=f"m{n}", receipt_handle=f"r{n}", body=body, receive_count=receive_count)


def _pipeline(
    encryptor: FakeEncryptor | None = None,
    publisher: FakePublisher | None = None,
    queue: FakeQueue | None = None,
    max_attempts: int | None = 3,
    *,
    max_unexpected_attempts: int = 3,
    max_body_bytes: int = 4096,
) -> tuple[OwnerPipeline, FakeQueue, FakePublisher]:
    queue = queue or FakeQueue()
    publisher = publisher or FakePublisher()
    pipeline = OwnerPipeline(
        registry=REGISTRY,
        encryptor=encryptor or FakeEncryptor(),
        publisher=publisher,
        queue=queue,
        dead_letters=queue,
        topic=TOPIC,
        max_body_bytes=max_body_bytes,
        retry=RetryPolicy(
            initial_seconds=0.001,
            max_seconds=0.002,
            max_attempts=max_attempts,
            max_unexpected_attempts=max_unexpected_attempts,
            jitter=True,
        ),
        metrics=OwnerMetrics(),
    )
    return pipeline, queue, publisher


async def _run_until_deleted(
    pipeline: OwnerPipeline, queue: FakeQueue, count: int, *, concurrency: int
) -> bool:
    """Run an ``OwnerRunner`` until ``count`` messages are deleted (2 s at most); whether it drained."""
    runner = OwnerRunner(pipeline, queue, concurrency=concurrency, wait_seconds=0)
    runner.start()
    for _ in range(200):
        if len(queue.deleted) == count:
            break
        await asyncio.sleep(0.01)
    return await runner.drain(grace_seconds=2)


async def test_valid_event_is_encrypted_published_to_its_partition_then_deleted():
    (event,) = generate_events(1, ["finance"], seed=1)
    pipeline, queue, publisher = _pipeline()
    outcome = await pipeline.handle(_message(to_message_body(event)))
    assert outcome is MessageOutcome.PUBLISHED
    (record,) = publisher.records
    finance = REGISTRY.get("finance")
    assert (
        record.partition == partition_for(finance, entity_key(event))
        and record.partition in finance.partitions
    )
    assert record.key == record_key(finance, entity_key(event))
    headers = dict(record.headers)
    assert headers[H_EVENT_ID] == str(event.event_id).encode() and headers[H_DEPARTMENT] == b"finance"
    assert headers[H_KEY_ARN] == b"arn:aws:kms:r:1:alias/finance"
    assert headers[H_CONTENT] == CONTENT_ESDK.encode()
    assert RecordMetadata.from_headers(record.headers).produced_at > 0
    assert event.data["card_number"].encode() not in record.value and b"card_number" not in record.value
    assert queue.deleted == ["m0"]
    assert pipeline.encryptor.contexts == [  # type: ignore[attr-defined]
        {"department": "finance", "event_type": "payment.settled", "schema_version": "1", "topic": TOPIC}
    ]
    snap = pipeline.metrics.snapshot()
    assert snap["published"] == snap["received"] == 1 and accounted(snap)


async def test_the_content_header_says_what_the_encryptor_wrote():
    class LabellingEncryptor(FakeEncryptor):
        def encrypt(self, binding: Binding, plaintext: bytes) -> Encrypted:
            return replace(super().encrypt(binding, plaintext), content="plaintext")

    (event,) = generate_events(1, ["sales"], seed=2)
    pipeline, _, publisher = _pipeline(encryptor=LabellingEncryptor())
    assert await pipeline.handle(_message(to_message_body(event))) is MessageOutcome.PUBLISHED
    (record,) = publisher.records
    assert dict(record.headers)[H_CONTENT] == b"plaintext"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{not json", "invalid_json"),
        (json.dumps({"event_id": "x"}), "schema"),
        ("UNKNOWN_FIELD", "schema"),
        ("UNKNOWN_DEPARTMENT", "unknown_department"),
        ("BAD_PAYLOAD", "invalid_payload"),
        ("x" * 5000, "too_large"),
    ],
)
async def test_invalid_messages_are_dead_lettered_with_reason_and_never_published(body, reason):
    (event,) = generate_events(1, ["sales"], seed=2)
    good = json.loads(to_message_body(event))
    if body == "UNKNOWN_FIELD":
        body = json.dumps({**good, "extra": 1})
    elif body == "UNKNOWN_DEPARTMENT":
        body = json.dumps({**good, "department": "marketing"})
    elif body == "BAD_PAYLOAD":
        body = json.dumps({**good, "data": {"order_id": "o"}})
    pipeline, queue, publisher = _pipeline()
    assert await pipeline.handle(_message(body)) is MessageOutcome.DEAD_LETTERED
    assert queue.dead == [("m0", reason, body)]
    assert queue.deleted == ["m0"]
    assert publisher.records == []
    assert (
        pipeline.metrics.registry.get_sample_value("keyfan_owner_dead_lettered_total", {"reason": reason})
        == 1
    )


async def test_dlq_unavailable_keeps_the_message():
    pipeline, queue, _ = _pipeline(queue=FakeQueue(fail_dlq=True))
    assert await pipeline.handle(_message("{bad")) is MessageOutcome.RELEASED
    assert queue.deleted == [] and len(queue.visibility) == 1


@pytest.mark.parametrize(
    "error", [KeyServiceUnavailable("kms down"), PublishFailed("broker down")], ids=["kms", "broker"]
)
async def test_transient_failure_is_retried_in_process_until_it_succeeds(error):
    (event,) = generate_events(1, ["sales"], seed=3)
    encryptor = FakeEncryptor([error] if isinstance(error, KeyServiceUnavailable) else [])
    publisher = FakePublisher([error] if isinstance(error, PublishFailed) else [])
    pipeline, queue, _ = _pipeline(encryptor, publisher)
    assert await pipeline.handle(_message(to_message_body(event))) is MessageOutcome.PUBLISHED
    # Its visibility was extended while it waited, and it was deleted once published
    assert [mid for mid, _ in queue.visibility] == ["m0"] and queue.visibility[0][1] >= 30
    assert queue.deleted == ["m0"] and len(publisher.records) == 1


@pytest.mark.parametrize(
    ("error", "cause"),
    [(KeyServiceUnavailable("kms down"), "kms_unavailable"), (PublishFailed("no ack"), "publish_failed")],
)
async def test_transient_failure_that_persists_is_released_not_deleted(error, cause):
    (event,) = generate_events(1, ["sales"], seed=4)
    errors = [error] * 5
    if isinstance(error, KeyServiceUnavailable):
        pipeline, queue, publisher = _pipeline(encryptor=FakeEncryptor(errors), max_attempts=3)
    else:
        pipeline, queue, publisher = _pipeline(publisher=FakePublisher(errors), max_attempts=3)
    assert await pipeline.handle(_message(to_message_body(event))) is MessageOutcome.RELEASED
    assert queue.deleted == [] and publisher.records == []
    assert pipeline.metrics.registry.get_sample_value("keyfan_owner_released_total", {"cause": cause}) == 1
    assert accounted(pipeline.metrics.snapshot())


async def test_access_denied_is_released_for_redrive_and_not_retried_in_process(caplog):
    (event,) = generate_events(1, ["finance"], seed=5)
    denied = AccessDenied(
        "KMS GenerateDataKey denied (AccessDeniedException)", key_arn="arn:k", principal="arn:p"
    )
    encryptor = FakeEncryptor([denied, denied])
    pipeline, queue, publisher = _pipeline(encryptor=encryptor)
    assert await pipeline.handle(_message(to_message_body(event), receive_count=2)) is MessageOutcome.RELEASED
    assert len(encryptor.errors) == 1  # tried once
    assert queue.deleted == [] and queue.dead == [] and publisher.records == []
    assert any(r.levelname == "ERROR" and "denied" in r.getMessage() for r in caplog.records)


async def test_published_but_delete_failed_is_still_published_and_counted():
    (event,) = generate_events(1, ["sales"], seed=6)
    pipeline, _queue, publisher = _pipeline(queue=FakeQueue(fail_delete=True))
    assert await pipeline.handle(_message(to_message_body(event))) is MessageOutcome.PUBLISHED
    assert len(publisher.records) == 1
    assert pipeline.metrics.registry.get_sample_value("keyfan_owner_delete_failures_total") == 1


def _counts(pipeline: OwnerPipeline) -> tuple[int, int, int, int, int]:
    """(received, published, dead-lettered, released, in flight), after checking they add up."""
    snap = pipeline.metrics.snapshot()
    assert accounted(snap)
    return (
        snap["received"],
        snap["published"],
        snap["dead_lettered"],
        snap["released"],
        snap["in_flight"],
    )


def _dead_lettered(pipeline: OwnerPipeline, reason: str) -> float | None:
    return pipeline.metrics.registry.get_sample_value("keyfan_owner_dead_lettered_total", {"reason": reason})


async def test_an_unexpected_error_is_retried_n_times_then_dead_lettered_with_its_type(caplog):
    # Given: an encryptor with a bug (ZeroDivisionError on every call) and a bound of 3 attempts
    (event,) = generate_events(1, ["sales"], seed=7)
    body = to_message_body(event)
    encryptor = FakeEncryptor([ZeroDivisionError("division by zero")] * 10)
    pipeline, queue, publisher = _pipeline(encryptor=encryptor, max_unexpected_attempts=3)
    # When: the message is handled once (its first receive)
    outcome = await pipeline.handle(_message(body))
    # Then: it was attempted exactly 3 times, then copied to the DLQ with the error's type and deleted
    assert outcome is MessageOutcome.DEAD_LETTERED
    assert 10 - len(encryptor.errors) == 3
    assert queue.dead == [("m0", "unexpected_ZeroDivisionError", body)]
    assert queue.deleted == ["m0"] and publisher.records == []
    # its visibility was extended before each of the 2 waits, never released to SQS
    assert [mid for mid, _ in queue.visibility] == ["m0", "m0"]
    assert all(seconds >= 30 for _, seconds in queue.visibility)
    # received = published + dead-lettered + released + in flight
    assert _counts(pipeline) == (1, 0, 1, 0, 0)
    assert _dead_lettered(pipeline, "unexpected_ZeroDivisionError") == 1
    # logged at ERROR with metadata only: never the body, nor the exception's text
    (final,) = [r for r in caplog.records if r.getMessage() == "unexpected failure, message dead-lettered"]
    assert final.levelname == "ERROR"
    assert (final.message_id, final.reason, final.error_type) == (  # type: ignore[attr-defined]
        "m0",
        "unexpected_ZeroDivisionError",
        "ZeroDivisionError",
    )
    logged = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    assert event.data["customer_name"] not in logged and "division by zero" not in logged


async def test_an_unexpected_error_from_the_publisher_counts_towards_the_same_bound():
    # Given: a publisher that raises ZeroDivisionError every time, and a bound of 2
    (event,) = generate_events(1, ["finance"], seed=7)
    publisher = FakePublisher([ZeroDivisionError()] * 5)
    pipeline, queue, _ = _pipeline(publisher=publisher, max_unexpected_attempts=2)
    # When
    assert await pipeline.handle(_message(to_message_body(event))) is MessageOutcome.DEAD_LETTERED
    # Then: published 2 times (both failed), then dead-lettered and deleted
    assert 5 - len(publisher.errors) == 2 and publisher.records == []
    assert [(mid, reason) for mid, reason, _ in queue.dead] == [("m0", "unexpected_ZeroDivisionError")]
    assert queue.deleted == ["m0"]
    assert _counts(pipeline) == (1, 0, 1, 0, 0)


async def test_an_unexpected_error_that_clears_within_the_bound_is_published():
    # Given: a bug that strikes once
    (event,) = generate_events(1, ["sales"], seed=7)
    pipeline, queue, publisher = _pipeline(encryptor=FakeEncryptor([RuntimeError("bug")]))
    # When
    assert await pipeline.handle(_message(to_message_body(event))) is MessageOutcome.PUBLISHED
    # Then: published once, deleted, nothing dead-lettered
    assert len(publisher.records) == 1 and queue.deleted == ["m0"] and queue.dead == []
    assert _counts(pipeline) == (1, 1, 0, 0, 0)


async def test_outages_are_not_counted_towards_the_unexpected_bound():
    # Given: KMS down for 5 attempts, retries without bound, and a bound of 1 for unexpected errors
    (event,) = generate_events(1, ["sales"], seed=7)
    encryptor = FakeEncryptor([KeyServiceUnavailable("down")] * 5)
    pipeline, queue, publisher = _pipeline(encryptor=encryptor, max_attempts=None, max_unexpected_attempts=1)
    # When
    assert await pipeline.handle(_message(to_message_body(event))) is MessageOutcome.PUBLISHED
    # Then: retried through the outage and published, never dead-lettered
    assert encryptor.errors == [] and len(publisher.records) == 1 and queue.dead == []
    assert _counts(pipeline) == (1, 1, 0, 0, 0)


async def test_unexpected_error_never_escapes_even_when_dead_lettering_it_fails_too():
    # Given: a bug on every encrypt, and a DLQ adapter with a bug as well
    class BrokenDlq(FakeQueue):
        def send_dead_letter(self, message: QueueMessage, *, reason: str) -> str:
            raise KeyError("bug in the DLQ adapter")

    (event,) = generate_events(1, ["sales"], seed=7)
    queue = BrokenDlq()
    pipeline, _, _ = _pipeline(
        encryptor=FakeEncryptor([ZeroDivisionError()] * 5), queue=queue, max_unexpected_attempts=2
    )
    # When
    assert await pipeline.handle(_message(to_message_body(event))) is MessageOutcome.RELEASED
    # Then: the last resort keeps it in SQS for a later receive
    assert queue.deleted == [] and queue.dead == []
    assert _counts(pipeline) == (1, 0, 0, 1, 0)
    assert pipeline.metrics.registry.get_sample_value("keyfan_owner_released_total", {"cause": "error"}) == 1


async def test_stop_releases_a_message_waiting_for_an_unexpected_retry():
    # Given: a bug on every encrypt and a long backoff
    (event,) = generate_events(1, ["sales"], seed=7)
    pipeline, queue, _ = _pipeline(encryptor=FakeEncryptor([ZeroDivisionError()] * 5))
    pipeline.retry = RetryPolicy(initial_seconds=30, max_seconds=30, max_unexpected_attempts=3, jitter=True)
    task = asyncio.create_task(pipeline.handle(_message(to_message_body(event))))
    await asyncio.sleep(0.05)
    # When: the service stops during the wait
    pipeline.stop()
    # Then: released at once for the next worker, not dead-lettered
    assert await asyncio.wait_for(task, 2) is MessageOutcome.RELEASED
    assert queue.visibility[-1] == ("m0", 0) and queue.dead == []
    assert _counts(pipeline) == (1, 0, 0, 1, 0)


async def test_an_unexpected_delete_failure_after_publish_neither_hangs_nor_republishes():
    # Given: a queue whose batch delete has a bug
    class BrokenDelete(FakeQueue):
        def delete_batch(self, messages):
            raise TypeError("bug in the delete path")

    (event,) = generate_events(1, ["sales"], seed=7)
    pipeline, queue, publisher = _pipeline(queue=BrokenDelete())
    # When
    outcome = await asyncio.wait_for(pipeline.handle(_message(to_message_body(event))), 2)
    # Then: published once; undeleted, so SQS redelivers it (at-least-once), never dead-lettered
    assert outcome is MessageOutcome.PUBLISHED and len(publisher.records) == 1 and queue.dead == []
    assert pipeline.metrics.registry.get_sample_value("keyfan_owner_delete_failures_total") == 1
    assert _counts(pipeline) == (1, 1, 0, 0, 0)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("[" * 50000 + "]" * 50000, "invalid_json"),
        ('{"a":' * 5000 + "1" + "}" * 5000, "invalid_json"),
        ('{"n": ' + "9" * 5000 + "}", "invalid_json"),
        ("LONG_INT_IN_DATA", "invalid_json"),
        ("DEEP_DATA", "schema"),
        ("BAD_TIMESTAMP", "schema"),
    ],
    ids=["deep_array", "deep_object", "long_int", "long_int_in_data", "deep_data", "bad_timestamp"],
)
async def test_pathological_bodies_are_dead_lettered_with_a_reason_on_first_receive(body, reason):
    # Given: bodies whose parsing or validation raised foreign errors before
    (event,) = generate_events(1, ["sales"], seed=7)
    good = json.loads(to_message_body(event))
    if body == "LONG_INT_IN_DATA":
        body = json.dumps({**good, "data": {**good["data"], "n": 0}}).replace('"n": 0', '"n": ' + "9" * 5000)
    elif body == "DEEP_DATA":
        deep: dict = {"x": 1}
        for _ in range(300):
            deep = {"a": deep}
        body = json.dumps({**good, "data": deep})
    elif body == "BAD_TIMESTAMP":
        body = json.dumps({**good, "occurred_at": "0001-01-01T00:00:00+01:00"})
    encryptor = FakeEncryptor()
    pipeline, queue, publisher = _pipeline(encryptor=encryptor, max_body_bytes=256 * 1024)
    # When: received for the first time
    assert await pipeline.handle(_message(body)) is MessageOutcome.DEAD_LETTERED
    # Then: dead-lettered with its reason at once, never retried, encrypted or published
    assert queue.dead == [("m0", reason, body)] and queue.deleted == ["m0"]
    assert queue.visibility == [] and encryptor.contexts == [] and publisher.records == []
    assert _counts(pipeline) == (1, 0, 1, 0, 0)
    assert _dead_lettered(pipeline, reason) == 1


def test_the_unexpected_bound_is_a_setting_defaulting_to_the_policy(monkeypatch):
    # Given / When: the environment sets KEYFAN_UNEXPECTED_MAX_ATTEMPTS, or does not
    monkeypatch.delenv("KEYFAN_UNEXPECTED_MAX_ATTEMPTS", raising=False)
    default = OwnerSettings(queue_url="q", dlq_url="d")
    monkeypatch.setenv("KEYFAN_UNEXPECTED_MAX_ATTEMPTS", "5")
    # Then
    assert default.unexpected_max_attempts == RetryPolicy().max_unexpected_attempts == 3
    assert OwnerSettings(queue_url="q", dlq_url="d").unexpected_max_attempts == 5
    monkeypatch.setenv("KEYFAN_UNEXPECTED_MAX_ATTEMPTS", "0")
    with pytest.raises(ValidationError):
        OwnerSettings(queue_url="q", dlq_url="d")


async def test_accounting_holds_while_messages_are_in_flight():
    # Given: a publisher that blocks until released, and a mix of good and bad messages
    gate = asyncio.Event()
    pipeline, _queue, _publisher = _pipeline(publisher=FakePublisher(gate=gate))
    events = generate_events(6, ["sales", "finance"], seed=8)
    bodies = [to_message_body(e) for e in events] + ["{bad", "[]"]
    tasks = [asyncio.create_task(pipeline.handle(_message(b, i))) for i, b in enumerate(bodies)]
    await asyncio.sleep(0.05)
    # When: good ones are stuck in publish
    snap = pipeline.metrics.snapshot()
    # Then: received = published + dead-lettered + released + in flight
    assert snap == {**snap, "received": 8, "dead_lettered": 2, "in_flight": 6, "published": 0}
    assert accounted(snap)
    gate.set()
    await asyncio.gather(*tasks)
    snap = pipeline.metrics.snapshot()
    assert snap["published"] == 6 and snap["in_flight"] == 0 and accounted(snap)


async def test_stop_releases_a_message_waiting_for_a_retry_at_once():
    (event,) = generate_events(1, ["sales"], seed=9)
    pipeline, queue, _ = _pipeline(
        encryptor=FakeEncryptor([KeyServiceUnavailable("down")] * 100), max_attempts=None
    )
    pipeline.retry = RetryPolicy(initial_seconds=30, max_seconds=30, jitter=True)
    task = asyncio.create_task(pipeline.handle(_message(to_message_body(event))))
    await asyncio.sleep(0.05)
    pipeline.stop()
    assert await asyncio.wait_for(task, 2) is MessageOutcome.RELEASED
    assert queue.visibility[-1] == ("m0", 0)  # visible again now, for the next worker


async def test_runner_drains_every_message_then_stops():
    events = generate_events(35, ["sales", "finance"], seed=10)
    queue = FakeQueue(messages=[_message(to_message_body(e), i) for i, e in enumerate(events)])
    pipeline, _, publisher = _pipeline(queue=queue)
    assert await _run_until_deleted(pipeline, queue, 35, concurrency=3)
    assert len(publisher.records) == 35 and sorted(queue.deleted) == sorted(f"m{i}" for i in range(35))
    for record in publisher.records:
        department = dict(record.headers)[H_DEPARTMENT].decode()
        assert record.partition in REGISTRY.get(department).partitions


async def test_runner_survives_receive_failures():
    class Flaky(FakeQueue):
        calls = 0

        def receive(self, **kwargs):
            self.calls += 1
            if self.calls <= 2:
                raise QueueUnavailable("sqs down")
            return super().receive(**kwargs)

    (event,) = generate_events(1, ["sales"], seed=11)
    queue = Flaky(messages=[_message(to_message_body(event))])
    pipeline, _, publisher = _pipeline(queue=queue)
    runner = OwnerRunner(pipeline, queue, concurrency=1, wait_seconds=0)
    runner.start()
    for _ in range(200):
        if publisher.records:
            break
        await asyncio.sleep(0.01)
    await runner.drain(grace_seconds=1)
    assert len(publisher.records) == 1
    assert pipeline.metrics.registry.get_sample_value("keyfan_owner_poll_errors_total") == 2


def test_key_arns_are_alias_arns_in_the_owner_account():
    assert key_arns_for(REGISTRY, region="eu-west-1", account="123456789012") == {
        "sales": "arn:aws:kms:eu-west-1:123456789012:alias/s",
        "finance": "arn:aws:kms:eu-west-1:123456789012:alias/f",
    }


async def test_encrypts_are_serialized_per_department_so_a_cold_cache_costs_one_kms_call():
    import threading
    import time as _time

    class SlowEncryptor(FakeEncryptor):
        def __init__(self) -> None:
            super().__init__()
            self.active: dict[str, int] = {}
            self.peak: dict[str, int] = {}
            self.lock = threading.Lock()

        def encrypt(self, binding, plaintext):
            department = binding.department
            with self.lock:
                self.active[department] = self.active.get(department, 0) + 1
                self.peak[department] = max(self.peak.get(department, 0), self.active[department])
            _time.sleep(0.01)
            with self.lock:
                self.active[department] -= 1
            return super().encrypt(binding, plaintext)

    encryptor = SlowEncryptor()
    pipeline, _queue, publisher = _pipeline(encryptor=encryptor)
    events = generate_events(20, ["sales", "finance"], seed=12)
    await asyncio.gather(*(pipeline.handle(_message(to_message_body(e), i)) for i, e in enumerate(events)))
    assert len(publisher.records) == 20
    assert encryptor.peak == {"sales": 1, "finance": 1}


async def test_deletes_are_batched_and_a_refused_entry_fails_only_its_own_message():
    from keyfan.owner import DeleteBatcher

    class PartlyRefusing(FakeQueue):
        def delete_batch(self, messages):
            self.batches.append(len(messages))
            return {m.message_id: "ReceiptHandleIsInvalid" for m in messages if m.message_id == "m3"}

    queue = PartlyRefusing()
    batcher = DeleteBatcher(queue, linger_seconds=0.01)
    messages = [_message("{}", i) for i in range(12)]
    results = await asyncio.gather(*(batcher.delete(m) for m in messages), return_exceptions=True)
    assert queue.batches == [10, 2]
    assert [i for i, r in enumerate(results) if isinstance(r, QueueUnavailable)] == [3]


async def test_runner_deletes_with_far_fewer_calls_than_messages():
    events = generate_events(40, ["sales", "finance"], seed=13)
    queue = FakeQueue(messages=[_message(to_message_body(e), i) for i, e in enumerate(events)])
    pipeline, _, _ = _pipeline(queue=queue)
    await _run_until_deleted(pipeline, queue, 40, concurrency=2)
    assert len(queue.deleted) == 40 and len(queue.batches) <= 8


async def test_a_cached_data_key_seals_inline_and_kms_goes_to_a_thread():
    """v2 under a cached data key costs microseconds: no thread hop; only a KMS call leaves the loop."""
    import threading

    class InlineEncryptor(FakeEncryptor):
        def __init__(self) -> None:
            super().__init__()
            self.threads: list[str] = []
            self.cached = False

        def encrypt_cached(self, binding: Binding, plaintext: bytes) -> Encrypted | None:
            if not self.cached:
                return None
            self.threads.append("inline:" + threading.current_thread().name)
            return FakeEncryptor.encrypt(self, binding, plaintext)

        def encrypt(self, binding: Binding, plaintext: bytes) -> Encrypted:
            self.threads.append("blocking:" + threading.current_thread().name)
            self.cached = True  # the first call "asked KMS"; the key is cached from now on
            return super().encrypt(binding, plaintext)

    encryptor = InlineEncryptor()
    pipeline, _queue, publisher = _pipeline(encryptor=encryptor)
    events = generate_events(3, ["sales"], seed=5)
    for i, event in enumerate(events):
        assert await pipeline.handle(_message(to_message_body(event), i)) is MessageOutcome.PUBLISHED
    main = threading.current_thread().name
    assert encryptor.threads[0].startswith("blocking:") and encryptor.threads[0] != f"blocking:{main}"
    assert encryptor.threads[1:] == [f"inline:{main}", f"inline:{main}"]
    # and the binding it sealed under is the record's: topic, department, type, version and event id
    assert [b.event_id for b in encryptor.bindings] == [str(e.event_id) for e in events]
    assert {b.topic for b in encryptor.bindings} == {publisher.records[0].topic}
