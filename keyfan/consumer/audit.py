"""The audit record: one per final outcome of one record, metadata only.

The model forbids extra fields and has no field that could carry a payload value, so a payload cannot
leak into the audit topic by accident; ``tests/unit/test_audit.py`` checks that.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from keyfan.consumer.outcomes import Outcome

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


class AuditSink(Protocol):
    async def publish(self, record: AuditRecord) -> None:
        """Hand one audit record to the audit topic; raises ``PublishFailed`` if the broker refuses."""
        ...
