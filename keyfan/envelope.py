"""Wire format v1: how one department event travels on the shared topic.

    key      pseudonym of the entity (``routing.record_key``): ordering without a plaintext identifier
    headers  plaintext routing metadata, ``keyfan-*`` (see ``RecordMetadata``); no payload values
    value    a standard AWS Encryption SDK message whose plaintext is the sealed body
             ``{"event_id": ..., "data": {...}}``; its encryption context is the low-cardinality
             ``{department, event_type, schema_version, topic}``

The event id is bound *inside* the ciphertext rather than in the encryption context because the data-key
cache is keyed by the context: a per-event value there would cost one KMS call per event. After
decryption, ``open_sealed`` checks the id, and ``check_context`` checks the context, against the headers:
a ciphertext replayed under another record's metadata is a ``TamperedMessage``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from keyfan.exceptions import CorruptMessage, TamperedMessage
from keyfan.models import DepartmentEvent

WIRE_VERSION = "1"
CONTENT_ESDK = "esdk"
# Only the benchmark's plaintext twin writes this; consumers refuse it outside a benchmark.
CONTENT_PLAINTEXT = "plaintext"

H_VERSION = "keyfan-wire"
H_CONTENT = "keyfan-content"
H_EVENT_ID = "keyfan-event-id"
H_DEPARTMENT = "keyfan-department"
H_EVENT_TYPE = "keyfan-event-type"
H_SCHEMA_VERSION = "keyfan-schema-version"
H_OCCURRED_AT = "keyfan-occurred-at"
H_KEY_ARN = "keyfan-key-arn"
H_PRODUCED_AT = "keyfan-produced-at"

# Encryption-context keys; the IaC conditions consumer Decrypt on ``kms:EncryptionContext:department``.
CTX_DEPARTMENT = "department"
CTX_EVENT_TYPE = "event_type"
CTX_SCHEMA_VERSION = "schema_version"
CTX_TOPIC = "topic"
CONTEXT_KEYS = (CTX_DEPARTMENT, CTX_EVENT_TYPE, CTX_SCHEMA_VERSION, CTX_TOPIC)

Headers = list[tuple[str, bytes]]


class RecordMetadata(BaseModel):
    """The plaintext half of a record: enough to route, audit and check, never a payload value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str
    department: str
    event_type: str
    schema_version: int
    occurred_at: datetime
    key_arn: str
    content: str = CONTENT_ESDK
    # Wall-clock time the owner published, in epoch seconds; for end-to-end latency measurements.
    produced_at: float = 0.0

    @classmethod
    def for_event(
        cls,
        event: DepartmentEvent,
        *,
        key_arn: str,
        produced_at: float = 0.0,
        content: str = CONTENT_ESDK,
    ) -> RecordMetadata:
        return cls(
            event_id=str(event.event_id),
            department=event.department,
            event_type=event.event_type,
            schema_version=event.schema_version,
            occurred_at=event.occurred_at,
            key_arn=key_arn,
            content=content,
            produced_at=produced_at,
        )

    def encryption_context(self, topic: str) -> dict[str, str]:
        return encryption_context(self.department, self.event_type, self.schema_version, topic)

    def to_headers(self) -> Headers:
        values = {
            H_VERSION: WIRE_VERSION,
            H_CONTENT: self.content,
            H_EVENT_ID: self.event_id,
            H_DEPARTMENT: self.department,
            H_EVENT_TYPE: self.event_type,
            H_SCHEMA_VERSION: str(self.schema_version),
            H_OCCURRED_AT: self.occurred_at.isoformat(),
            H_KEY_ARN: self.key_arn,
            H_PRODUCED_AT: repr(self.produced_at),
        }
        return [(name, value.encode("utf-8")) for name, value in values.items()]

    @classmethod
    def from_headers(
        cls, headers: Iterable[tuple[str, bytes]] | Mapping[str, bytes] | None
    ) -> RecordMetadata:
        """Parse a record's headers; anything missing or malformed is a ``CorruptMessage``."""
        pairs = headers.items() if isinstance(headers, Mapping) else (headers or [])
        try:
            found = {
                name: bytes(value).decode("utf-8") for name, value in pairs if name.startswith("keyfan-")
            }
        except (UnicodeDecodeError, TypeError) as exc:
            raise CorruptMessage("bad_headers", "keyfan headers are not UTF-8") from exc
        version = found.get(H_VERSION)
        if version != WIRE_VERSION:
            raise CorruptMessage("bad_headers", f"unsupported or missing wire version {version!r}")
        try:
            return cls(
                event_id=found[H_EVENT_ID],
                department=found[H_DEPARTMENT],
                event_type=found[H_EVENT_TYPE],
                schema_version=int(found[H_SCHEMA_VERSION]),
                occurred_at=datetime.fromisoformat(found[H_OCCURRED_AT]),
                key_arn=found[H_KEY_ARN],
                content=found.get(H_CONTENT, CONTENT_ESDK),
                produced_at=float(found.get(H_PRODUCED_AT, "0")),
            )
        except KeyError as exc:
            raise CorruptMessage("bad_headers", f"missing header {exc.args[0]!r}") from None
        except (ValueError, ValidationError) as exc:
            raise CorruptMessage("bad_headers", f"malformed keyfan header: {type(exc).__name__}") from None


def encryption_context(department: str, event_type: str, schema_version: int, topic: str) -> dict[str, str]:
    """The encryption context: low-cardinality on purpose (the data-key cache is keyed by it)."""
    return {
        CTX_DEPARTMENT: department,
        CTX_EVENT_TYPE: event_type,
        CTX_SCHEMA_VERSION: str(schema_version),
        CTX_TOPIC: topic,
    }


def check_context(metadata: RecordMetadata, topic: str, actual: Mapping[str, str]) -> None:
    """The ciphertext's encryption context must equal what the headers claim (the SDK's master-key API
    does not check it on decrypt)."""
    expected = metadata.encryption_context(topic)
    mismatched = [key for key in CONTEXT_KEYS if actual.get(key) != expected[key]]
    if mismatched:
        raise TamperedMessage(
            "context_mismatch", f"encryption context disagrees with headers on {mismatched}"
        )


def seal(event: DepartmentEvent) -> bytes:
    """The plaintext that gets encrypted: the payload with its event id bound to it."""
    return json.dumps(
        {"event_id": str(event.event_id), "data": event.model_dump(mode="json")["data"]},
        separators=(",", ":"),
    ).encode("utf-8")


def open_sealed(plaintext: bytes, metadata: RecordMetadata) -> dict[str, Any]:
    """The payload inside a decrypted body, after checking that it belongs to this record."""
    try:
        body = json.loads(plaintext)
        event_id, data = body["event_id"], body["data"]
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptMessage("bad_plaintext", "decrypted body is not a sealed keyfan payload") from exc
    if event_id != metadata.event_id:
        raise TamperedMessage(
            "event_id_mismatch", "event id inside the ciphertext disagrees with the headers"
        )
    if not isinstance(data, dict):
        raise CorruptMessage("bad_plaintext", "decrypted payload is not an object")
    return data
