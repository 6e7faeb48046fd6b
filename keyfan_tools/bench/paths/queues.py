"""The owner's work queues in the benchmark: SQS with its deletes counted, or messages already received; and
filling SQS as the generator does."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Collection, Sequence

from keyfan.generation import to_message_body
from keyfan.models import DepartmentEvent
from keyfan.sqs import OutgoingMessage, QueueMessage, SqsQueue
from keyfan_tools.bench.context import BenchError


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
