"""Patch 4 of ``keyfan_tools.local.moto_patches``: moto's SQS queue operations are atomic under concurrency.

moto's server answers each request in its own thread. Unpatched, concurrent deletes resurrect each other's
messages and two pollers can receive the same message (the owner e2e test once waited 30 s on a deleted
message that came back invisible). Here four threads receive, then delete, 200 messages while Python switches
threads every 10 µs; every message must be received exactly once and the queue must end empty.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.sqs.models import Queue, SQSBackend, sqs_backends

from keyfan_tools.local.moto_patches import _SQS_BACKEND_OPERATIONS, _serialize_queue_operations

pytestmark = pytest.mark.functional
MESSAGES = 200
THREADS = 4


@pytest.fixture
def patched_backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The locking patch on moto's classes for this test only (monkeypatch restores the originals)."""
    for name in _SQS_BACKEND_OPERATIONS:
        monkeypatch.setattr(SQSBackend, name, getattr(SQSBackend, name))
    monkeypatch.setattr(Queue, "delete_message", Queue.delete_message)
    _serialize_queue_operations(Queue, SQSBackend)
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    try:
        with mock_aws():
            boto3.client("sqs", region_name="us-east-1").create_queue(
                QueueName="q", Attributes={"VisibilityTimeout": "60"}
            )
            yield sqs_backends["123456789012"]["us-east-1"]
    finally:
        sys.setswitchinterval(previous)


def _in_threads(work: Callable[[int], None]) -> None:
    threads = [threading.Thread(target=work, args=(index,)) for index in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)


def test_concurrent_receives_and_deletes_lose_and_duplicate_nothing(patched_backend: Any) -> None:
    # Given: 400 messages on the queue
    for index in range(MESSAGES):
        patched_backend.send_message("q", f"m{index}")
    received: list[Any] = []
    errors: list[BaseException] = []

    # When: four threads receive until the queue is empty ...
    def receive(_: int) -> None:
        while batch := patched_backend.receive_message("q", 10, 0, 60):
            received.extend(batch)

    _in_threads(receive)
    handles = [message.receipt_handle for message in received]

    # ... and then delete what they received, with sends racing the deletes
    def delete(index: int) -> None:
        try:
            for handle in handles[index::THREADS]:
                patched_backend.delete_message("q", handle)
            patched_backend.send_message("q", f"late-{index}")
        except Exception as exc:  # pragma: no cover - only on a regression
            errors.append(exc)

    _in_threads(delete)

    # Then: each message was received once, every delete stuck, and no concurrent send vanished
    assert not errors
    assert len(received) == MESSAGES
    assert len({message.id for message in received}) == MESSAGES
    left = sorted(message.body for message in patched_backend.get_queue("q")._messages)
    assert left == sorted(f"late-{index}" for index in range(THREADS))
