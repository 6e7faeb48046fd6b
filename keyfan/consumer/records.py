"""What the consumer reads and where its dead letters go: the raw record, before anything is trusted."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

# Headers as Faust hands them over, untrusted (``keyfan.envelope.Headers`` is what the owner writes).
RawHeaders = Sequence[tuple[str, bytes]] | Mapping[str, bytes] | None


@dataclass(frozen=True, slots=True)
class RawRecord:
    """A record as read from the shared topic, before anything is trusted."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: RawHeaders


class DeadLetterSink(Protocol):
    async def publish(self, record: RawRecord, reason: str) -> None:
        """Send the raw record to the DLQ with metadata headers; raises ``PublishFailed`` on failure."""
        ...
