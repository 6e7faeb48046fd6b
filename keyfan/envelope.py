"""How one department event travels on the shared topic: the record around the encrypted value.

    key      pseudonym of the entity (``routing.record_key``): ordering without a plaintext identifier
    headers  plaintext routing metadata, ``keyfan-*`` (see ``RecordMetadata``); no payload values
    value    the sealed body ``{"event_id": ..., "data": {...}, "personal": {...}}``, encrypted (``personal``:
             the personal fields, sealed apart under the subject's key, ``keyfan.crypto.fields``);
             ``keyfan-content`` says how the body is encrypted:
             ``keyfan-v2``  wire v2 (the default): AES-256-GCM under a KMS data key (``keyfan.crypto.wire2``)
             ``esdk``       wire v1: a standard AWS Encryption SDK message whose encryption context is the
                            low-cardinality ``{department, event_type, schema_version, topic}``

``keyfan-wire`` is ``2`` for a v2 value and ``1`` otherwise; both are readable forever. What a record claims
in its headers (``Binding``) is bound to its value: v2 authenticates it as AAD, v1 through the encryption
context (checked by ``check_context``) and the event id inside the ciphertext (checked by ``open_body``).
A v1 event id is inside the ciphertext rather than in the context because the SDK's data-key cache is keyed
by the context: a per-event value there would cost one KMS call per event. A ciphertext replayed under
another record's metadata is a ``TamperedMessage``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from keyfan.exceptions import CorruptMessage, TamperedMessage
from keyfan.models import DepartmentEvent

WIRE_V1 = "1"
WIRE_V2 = "2"
CONTENT_ESDK = "esdk"
CONTENT_V2 = "keyfan-v2"
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
# The subject-key table's wrapping keys carry {department, purpose: subject-keys}: the owner may Decrypt those
# (iac/department.yaml conditions on the purpose) and never a record's data key.
CTX_PURPOSE = "purpose"
PURPOSE_SUBJECT_KEYS = "subject-keys"

Headers = list[tuple[str, bytes]]


def wire_version(content: str) -> str:
    """The ``keyfan-wire`` header for a value of ``content``."""
    return WIRE_V2 if content == CONTENT_V2 else WIRE_V1


@dataclass(frozen=True, slots=True)
class Binding:
    """What a record claims about its value, beside the key reference: its topic and the event's identity.

    Both sides build it, the owner from the event, a consumer from the record's topic and headers; a value
    opens only under the binding it was sealed with (v2's AAD; v1's context and inner event id).
    """

    topic: str
    department: str
    event_type: str
    schema_version: int
    event_id: str

    @classmethod
    def of_event(cls, event: DepartmentEvent, topic: str) -> Binding:
        return cls(topic, event.department, event.event_type, event.schema_version, str(event.event_id))

    def encryption_context(self) -> dict[str, str]:
        return encryption_context(self.department, self.event_type, self.schema_version, self.topic)


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

    def binding(self, topic: str) -> Binding:
        return Binding(topic, self.department, self.event_type, self.schema_version, self.event_id)

    def to_headers(self) -> Headers:
        values = {
            H_VERSION: wire_version(self.content),
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
        if version not in (WIRE_V1, WIRE_V2):
            raise CorruptMessage("bad_headers", f"unsupported or missing wire version {version!r}")
        content = found.get(H_CONTENT, CONTENT_ESDK)
        if version != wire_version(content):
            raise CorruptMessage("bad_headers", f"content {content!r} is not wire version {version}")
        try:
            return cls(
                event_id=found[H_EVENT_ID],
                department=found[H_DEPARTMENT],
                event_type=found[H_EVENT_TYPE],
                schema_version=int(found[H_SCHEMA_VERSION]),
                occurred_at=datetime.fromisoformat(found[H_OCCURRED_AT]),
                key_arn=found[H_KEY_ARN],
                content=content,
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


@dataclass(frozen=True, slots=True)
class SealedPersonal:
    """An event's personal fields, sealed under its subject's key (``keyfan.crypto.fields``), and the
    subject's pseudonym that finds the key (``keyfan.crypto.subjects``); never the subject's id."""

    subject: str
    ciphertext: bytes


@dataclass(frozen=True, slots=True)
class Body:
    """What a decrypted value holds: the payload without its personal fields, and those sealed apart
    (``personal`` is None for a department without tagged fields, and for records written before them)."""

    data: dict[str, Any]
    personal: SealedPersonal | None = None


def seal(
    event: DepartmentEvent,
    *,
    data: Mapping[str, Any] | None = None,
    personal: SealedPersonal | None = None,
) -> bytes:
    """The plaintext that gets encrypted: the payload (``data``: the event's own without its personal
    fields, when they are sealed apart as ``personal``) with its event id bound to it."""
    body: dict[str, Any] = {
        "event_id": str(event.event_id),
        "data": event.model_dump(mode="json")["data"] if data is None else data,
    }
    if personal is not None:
        body["personal"] = {
            "subject": personal.subject,
            "sealed": base64.b64encode(personal.ciphertext).decode("ascii"),
        }
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


def open_body(plaintext: bytes, metadata: RecordMetadata) -> Body:
    """The payload inside a decrypted value, after checking that it belongs to this record."""
    try:
        body = json.loads(plaintext)
        event_id, data = body["event_id"], body["data"]
        sealed = body.get("personal")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CorruptMessage("bad_plaintext", "decrypted body is not a sealed keyfan payload") from exc
    if event_id != metadata.event_id:
        raise TamperedMessage(
            "event_id_mismatch", "event id inside the ciphertext disagrees with the headers"
        )
    if not isinstance(data, dict):
        raise CorruptMessage("bad_plaintext", "decrypted payload is not an object")
    if sealed is None:
        return Body(data)
    try:
        personal = SealedPersonal(
            str(sealed["subject"]), base64.b64decode(sealed["sealed"].encode("ascii"), validate=True)
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:  # binascii.Error is a ValueError
        raise CorruptMessage("bad_personal", "the sealed personal fields are malformed") from exc
    return Body(data, personal)
