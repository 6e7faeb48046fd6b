"""Forgetting a subject (crypto-shredding): delete its key, then leave an audit record that says so.

``forget_subject`` is the library call, ``keyfan forget`` the command around it. Deleting the key is the
erasure: every personal field sealed under it, in every record already on the topic and in every replay,
is unreadable once the processes holding it have let it go (``subject_key_max_age_seconds``). The record
says when that is (``unreadable_by``). What forgetting does not reach is in docs/architecture.md
("Crypto-shredding").

The audit record carries metadata only: the subject's pseudonym (the key table's own name for it) and a
masked hint of its id, never the id itself.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from pydantic import BaseModel, ConfigDict, Field

from keyfan.crypto.subjectkeys import SubjectKeys
from keyfan.departments import DepartmentRegistry
from keyfan.exceptions import ConfigError, PublishFailed
from keyfan.masking import mask_id

ERASURE_SCHEMA_VERSION = 1


def _now() -> datetime:
    return datetime.now(UTC)


class ErasureRecord(BaseModel):
    """Who forgot which subject of which department, and from when no process can read its fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = ERASURE_SCHEMA_VERSION
    kind: Literal["subject_forgotten"] = "subject_forgotten"
    time: datetime = Field(default_factory=_now)
    department: str
    subject: str  # the pseudonym (``keyfan.crypto.subjects``), not the subject's id
    subject_hint: str  # the id masked, for a person matching a request to this record
    principal: str | None
    key_deleted: bool  # False: there was no key (never seen, or forgotten before)
    unreadable_by: datetime  # ``time`` plus the subject-key cache bound

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode("utf-8")


def forget_subject(
    keys: SubjectKeys,
    registry: DepartmentRegistry,
    department: str,
    subject: str,
    *,
    principal: str | None,
    cache_bound_seconds: float,
) -> ErasureRecord:
    """Delete the subject's key in the department's key table; the audit record to publish. Blocking (the
    table, and KMS for the department's wrapping key); raises ``AccessDenied``, ``KeyServiceUnavailable``
    or ``ConfigError``."""
    registry.get(department)  # an unknown department is a ConfigError, not an empty success
    if not subject.strip():
        raise ConfigError("a subject id is required")
    pseudonym = keys.store.wrapping_key(department).pseudonym(subject)
    deleted = keys.forget(department, subject)
    now = _now()
    return ErasureRecord(
        time=now,
        department=department,
        subject=pseudonym,
        subject_hint=mask_id(subject),
        principal=principal,
        key_deleted=deleted,
        unreadable_by=now + timedelta(seconds=cache_bound_seconds),
    )


async def publish_erasure(
    record: ErasureRecord, *, topic: str, producer_options: dict[str, Any], attempts: int = 5
) -> None:
    """The record onto the audit topic, acknowledged by all replicas; ``PublishFailed`` after ``attempts``."""
    producer = AIOKafkaProducer(acks="all", enable_idempotence=False, **producer_options)
    try:
        await producer.start()
        for attempt in range(1, attempts + 1):
            try:
                await producer.send_and_wait(topic, record.to_bytes(), key=record.department.encode("utf-8"))
                return
            except KafkaError as exc:
                if attempt == attempts:
                    raise PublishFailed(f"audit record not acknowledged: {type(exc).__name__}") from exc
                await asyncio.sleep(0.5 * attempt)
    except KafkaError as exc:
        raise PublishFailed(f"cannot reach the broker: {type(exc).__name__}") from exc
    finally:
        await producer.stop()
