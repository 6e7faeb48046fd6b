"""The owner's seams: what it needs from the work queue, the dead-letter queue and the broker.

Real adapters: ``keyfan.sqs.SqsQueue`` for both queues, ``keyfan.owner.app.FaustPublisher`` for the
broker; unit tests pass small fakes that satisfy these protocols.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from keyfan.envelope import Headers
from keyfan.sqs import QueueMessage


class Publisher(Protocol):
    async def publish(self, *, topic: str, partition: int, key: bytes, value: bytes, headers: Headers) -> int:
        """Send one record and wait for the broker's acknowledgement; the offset. Raises ``PublishFailed``."""
        ...


class WorkQueue(Protocol):
    def receive(
        self, *, max_messages: int = 10, wait_seconds: int = 2, visibility_timeout: int | None = None
    ) -> list[QueueMessage]: ...

    def delete(self, message: QueueMessage) -> None: ...

    def delete_batch(self, messages: Sequence[QueueMessage]) -> dict[str, str]: ...

    def change_visibility(self, message: QueueMessage, seconds: int) -> None: ...


class DeadLetterQueue(Protocol):
    def send_dead_letter(self, message: QueueMessage, *, reason: str) -> str: ...
