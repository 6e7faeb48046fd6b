"""The audit record: one per final outcome of one record, metadata only.

The model forbids extra fields and has no field that could carry a payload value, so a payload cannot
leak into the audit topic by accident; ``tests/unit/test_audit.py`` checks that.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from keyfan.consumer.outcomes import Classification, Outcome
from keyfan.consumer.records import RawRecord
from keyfan.envelope import RecordMetadata

AUDIT_SCHEMA_VERSION = 1


def _now() -> datetime:
    return datetime.now(UTC)


class AuditRecord(BaseModel):
    """Who tried to read which record, under which key, and what happened."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = AUDIT_SCHEMA_VERSION
    time: datetime = Field(default_factory=_now)
    consumer_department: str
    consumer_group: str
    record_department: str | None  # None when the headers were unreadable
    principal: str | None
    event_id: str | None
    topic: str
    partition: int
    offset: int
    key_arn: str | None
    outcome: Outcome
    reason: str

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode("utf-8")

    @classmethod
    def of_outcome(
        cls,
        consumer_department: str,
        consumer_group: str,
        record: RawRecord,
        metadata: RecordMetadata | None,
        key_arn: str | None,
        verdict: Classification,
        principal: str | None,
    ) -> AuditRecord:
        """The audit record of ``record``'s outcome: metadata from the headers (when they parsed) only."""
        return cls(
            consumer_department=consumer_department,
            consumer_group=consumer_group,
            record_department=metadata.department if metadata else None,
            principal=principal,
            event_id=metadata.event_id if metadata else None,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key_arn=key_arn,
            outcome=verdict.outcome,
            reason=verdict.reason,
        )


class AuditSink(Protocol):
    """Where audit records go. ``publish`` may only hand a record over; ``flush`` returns once every record
    handed over is acknowledged, and a position may move past a record only after that (see
    ``RecordPipeline.settle``)."""

    async def publish(self, record: AuditRecord) -> None:
        """Hand one audit record to the audit topic; raises ``PublishFailed`` if the broker refuses."""
        ...

    async def flush(self) -> None:
        """Wait until every record published so far is acknowledged; ``PublishFailed`` if one was not (it is
        sent again by the next ``flush``)."""
        ...

    def discard(self) -> None:
        """Stop waiting for the records published so far (their batch is abandoned and will be read again)."""
        ...
