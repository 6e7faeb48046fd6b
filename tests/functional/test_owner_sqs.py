"""The SQS adapter against moto in-process: long poll, visibility, delete, dead-letter attributes, batches."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from keyfan.exceptions import QueueUnavailable
from keyfan.sqs import OutgoingMessage, SqsQueue

pytestmark = pytest.mark.functional


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


def _queue(sqs: Any, name: str) -> SqsQueue:
    return SqsQueue(sqs, sqs.create_queue(QueueName=name)["QueueUrl"], sleep=lambda _s: None)


def test_batch_send_then_receive_delete(sqs):
    queue = _queue(sqs, "main")
    result = queue.send_batch([OutgoingMessage(f'{{"n":{i}}}', {"department": "sales"}) for i in range(23)])
    assert (result.sent, result.failed, result.calls) == (23, (), 3)
    seen: list[str] = []
    while batch := queue.receive(max_messages=10, wait_seconds=0):
        for message in batch:
            assert message.attributes["department"] == "sales" and message.receive_count == 1
            seen.append(message.body)
            queue.delete(message)
    assert sorted(seen) == sorted(f'{{"n":{i}}}' for i in range(23))


def test_change_visibility_zero_redelivers_with_a_higher_receive_count(sqs):
    queue = _queue(sqs, "vis")
    queue.send("{}")
    (first,) = queue.receive(wait_seconds=0, visibility_timeout=30)
    assert queue.receive(wait_seconds=0) == []
    queue.change_visibility(first, 0)
    (again,) = queue.receive(wait_seconds=0)
    assert again.message_id == first.message_id and again.receive_count == 2


def test_dead_letter_copies_body_and_adds_reason_and_source_id(sqs):
    main, dlq = _queue(sqs, "main2"), _queue(sqs, "dlq")
    main.send("{not json", {"correlation_id": "c-1"})
    (message,) = main.receive(wait_seconds=0)
    dlq.send_dead_letter(message, reason="invalid_json")
    (dead,) = dlq.receive(wait_seconds=0)
    assert dead.body == "{not json"
    assert dead.attributes == {
        "correlation_id": "c-1",
        "reason": "invalid_json",
        "source_message_id": message.message_id,
    }


def test_errors_become_queue_unavailable(sqs):
    missing = SqsQueue(sqs, "https://sqs.us-east-1.amazonaws.com/123456789012/missing")
    with pytest.raises(QueueUnavailable):
        missing.receive(wait_seconds=0)
    result = missing.send_batch([OutgoingMessage("{}")])
    assert result.sent == 0 and len(result.failed) == 1


def test_delete_batch_deletes_and_reports_refusals(sqs):
    queue = _queue(sqs, "batchdel")
    queue.send_batch([OutgoingMessage(str(i)) for i in range(5)])
    received = queue.receive(max_messages=10, wait_seconds=0)
    assert len(received) == 5
    assert queue.delete_batch(received) == {}
    assert queue.receive(wait_seconds=0) == []
