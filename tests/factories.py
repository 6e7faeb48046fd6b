"""Test factories shared by unit, functional and e2e tests: records exactly as the owner writes them.

``owner_record`` uses a real encryptor (e2e/functional: v2 or v1, with KMS); ``fake_record`` and
``FakeDecryptor`` give the same wire format with a transparent fake "ciphertext" (unit tests, no KMS).
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keyfan.consumer.audit import AuditRecord
from keyfan.consumer.records import RawRecord
from keyfan.crypto import Decrypted, Encryptor
from keyfan.departments import DepartmentRegistry
from keyfan.envelope import CONTENT_ESDK, Binding, Headers, RecordMetadata, encryption_context, seal
from keyfan.exceptions import AccessDenied, CorruptMessage, KeyServiceUnavailable, PublishFailed
from keyfan.models import DepartmentEvent, entity_key
from keyfan.routing import partition_for, record_key

REPO = Path(__file__).resolve().parents[1]
FAKE_MAGIC = b"FAKE1:"
ACCOUNT = "123456789012"


def fake_key_arn(department: str) -> str:
    return f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{department}-key"


@dataclass(frozen=True)
class OwnerRecord:
    """What the owner publishes for one event: where, and the key/value/headers."""

    partition: int
    key: bytes
    value: bytes
    headers: Headers
    event: DepartmentEvent


def owner_record(
    encryptor: Encryptor, registry: DepartmentRegistry, event: DepartmentEvent, topic: str
) -> OwnerRecord:
    """Encrypt ``event`` the way ``keyfan.owner`` does (a real encryptor and KMS)."""
    department = registry.get(event.department)
    entity = entity_key(event)
    encrypted = encryptor.encrypt(Binding.of_event(event, topic), seal(event))
    headers = RecordMetadata.for_event(
        event, key_arn=encrypted.key_arn, content=encrypted.content
    ).to_headers()
    return OwnerRecord(
        partition=partition_for(department, entity),
        key=record_key(department, entity),
        value=encrypted.ciphertext,
        headers=headers,
        event=event,
    )


def fake_ciphertext(plaintext: bytes, context: Mapping[str, str], key_arn: str) -> bytes:
    body = {"key": key_arn, "ctx": dict(context), "pt": base64.b64encode(plaintext).decode()}
    return FAKE_MAGIC + json.dumps(body).encode()


def fake_record(
    event: DepartmentEvent,
    *,
    topic: str = "keyfan.events",
    partition: int | None = None,
    offset: int = 0,
    key_arn: str | None = None,
    context: Mapping[str, str] | None = None,
    plaintext: bytes | None = None,
    headers: Headers | None = None,
) -> RawRecord:
    """A record as the owner would write it, with fake encryption; override any part to tamper.

    Without ``partition`` it lands where the owner routes it (``routed_partition``)."""
    arn = key_arn or fake_key_arn(event.department)
    ctx = context or encryption_context(event.department, event.event_type, event.schema_version, topic)
    value = fake_ciphertext(plaintext if plaintext is not None else seal(event), ctx, arn)
    hdrs = headers if headers is not None else RecordMetadata.for_event(event, key_arn=arn).to_headers()
    where = routed_partition(event) if partition is None else partition
    return RawRecord(topic=topic, partition=where, offset=offset, key=b"k", value=value, headers=hdrs)


def routed_partition(event: DepartmentEvent, registry: DepartmentRegistry | None = None) -> int:
    """The partition the owner publishes ``event`` to (with the repository's ``departments.toml``)."""
    registry = registry or DepartmentRegistry.load(REPO / "departments.toml")
    return partition_for(registry.get(event.department), entity_key(event))


class ListAudit:
    """An in-memory audit sink; ``fail = n`` makes the next n publishes fail."""

    def __init__(self) -> None:
        self.records: list[AuditRecord] = []
        self.fail = 0

    async def publish(self, record: AuditRecord) -> None:
        if self.fail:
            self.fail -= 1
            raise PublishFailed("broker down")
        self.records.append(record)

    async def flush(self) -> None:
        """Nothing waits: ``publish`` stores at once, as an acknowledged send would."""

    def discard(self) -> None:
        """Nothing is pending."""


class ListDeadLetters:
    """An in-memory DLQ sink."""

    def __init__(self) -> None:
        self.records: list[tuple[RawRecord, str]] = []

    async def publish(self, record: RawRecord, reason: str) -> None:
        self.records.append((record, reason))


@dataclass
class FakeDecryptor:
    """A ``Decryptor`` with switchable denials and outages; counts "KMS calls" like the real observer.

    It reads what ``fake_record`` writes (labelled ``esdk``, as a v1 record) and never opens inline, so
    every decrypt goes through the pipeline's ``run_blocking``, as a KMS call would."""

    content = CONTENT_ESDK
    denied: set[str] = field(default_factory=set)
    down: bool = False
    calls: Counter[str] = field(default_factory=Counter)

    @property
    def observer(self) -> FakeDecryptor:
        return self

    def key_arns(self, ciphertext: bytes) -> tuple[str, ...]:
        return (str(self._parse(ciphertext)["key"]),)

    def decrypt_cached(self, ciphertext: bytes, binding: Binding) -> Decrypted | None:
        return None

    def decrypt(self, ciphertext: bytes, binding: Binding) -> Decrypted:
        body = self._parse(ciphertext)
        self.calls["Decrypt"] += 1
        if self.down:
            raise KeyServiceUnavailable("KMS Decrypt unavailable: fake outage")
        if body["key"] in self.denied:
            raise AccessDenied(
                "KMS Decrypt denied (AccessDeniedException)", key_arn=body["key"], principal="fake"
            )
        return Decrypted(
            plaintext=base64.b64decode(body["pt"]), encryption_context=body["ctx"], key_arn=body["key"]
        )

    @staticmethod
    def _parse(ciphertext: bytes) -> dict[str, Any]:
        if not ciphertext.startswith(FAKE_MAGIC):
            raise CorruptMessage("bad_ciphertext", "not a fake message")
        try:
            body = json.loads(ciphertext[len(FAKE_MAGIC) :])
        except ValueError as exc:
            raise CorruptMessage("bad_ciphertext", "truncated fake message") from exc
        if not isinstance(body, dict):
            raise CorruptMessage("bad_ciphertext", "not an object")
        return body


def ground_truth(events: list[DepartmentEvent]) -> dict[str, dict[str, object]]:
    """Aggregates computed straight from the generated events, independently of the handlers."""
    from decimal import Decimal

    orders = 0
    by_region: dict[str, dict[str, Decimal]] = {}
    by_product: dict[str, dict[str, Decimal]] = {}
    payments = 0
    ledger: dict[str, Decimal] = {}
    for event in events:
        data = event.data
        if event.department == "sales":
            orders += 1
            currency = data["currency"]
            for item in data["line_items"]:
                amount = Decimal(str(item["unit_price"])) * int(item["quantity"])
                region = by_region.setdefault(data["region"], {})
                region[currency] = region.get(currency, Decimal(0)) + amount
                product = by_product.setdefault(item["product"], {})
                product[currency] = product.get(currency, Decimal(0)) + amount
        elif event.department == "finance":
            payments += 1
            ledger[data["currency"]] = ledger.get(data["currency"], Decimal(0)) + Decimal(str(data["amount"]))

    def text(d: dict[str, Decimal]) -> dict[str, str]:
        return {k: str(v) for k, v in sorted(d.items())}

    return {
        "sales": {
            "orders": orders,
            "revenue_by_region": {k: text(v) for k, v in sorted(by_region.items())},
            "revenue_by_product": {k: text(v) for k, v in sorted(by_product.items())},
        },
        "finance": {"payments": payments, "ledger": text(ledger)},
    }


def same_money(a: object, b: object) -> bool:
    """Compare nested aggregates numerically (``'10.50'`` equals ``'10.5'``)."""
    from decimal import Decimal

    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_money(a[k], b[k]) for k in a)
    if isinstance(a, str) and isinstance(b, str):
        return Decimal(a) == Decimal(b)
    return a == b
