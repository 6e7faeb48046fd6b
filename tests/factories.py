"""Test factories shared by unit, functional and e2e tests: records exactly as the owner writes them.

``owner_record`` uses a real encryptor (e2e/functional: v2 or v1, with KMS); ``fake_record`` and
``FakeDecryptor`` give the same wire format with a transparent fake "ciphertext" (unit tests, no KMS).
``FakeDynamoDB``, ``FakeKms`` and ``fake_subject_keys`` give the subject-key table in memory (unit tests).
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError, EndpointConnectionError

from keyfan.consumer.audit import AuditRecord
from keyfan.consumer.records import RawRecord
from keyfan.crypto import Decrypted, Encryptor
from keyfan.crypto.keystore import SubjectKeyStore
from keyfan.crypto.subjectkeys import SubjectKeys
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
    encryptor: Encryptor,
    registry: DepartmentRegistry,
    event: DepartmentEvent,
    topic: str,
    subject_keys: SubjectKeys | None = None,
) -> OwnerRecord:
    """Encrypt ``event`` the way ``keyfan.owner`` does (a real encryptor and KMS; with ``subject_keys``, its
    personal fields sealed apart under the subject's key)."""
    department = registry.get(event.department)
    entity = entity_key(event)
    binding = Binding.of_event(event, topic)
    body = seal(event) if subject_keys is None else subject_keys.seal_body(event, binding)
    encrypted = encryptor.encrypt(binding, body)
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
    inline: bool = False  # open on the caller's thread, as v2 does under a cached data key

    @property
    def observer(self) -> FakeDecryptor:
        return self

    def key_arns(self, ciphertext: bytes) -> tuple[str, ...]:
        return (str(self._parse(ciphertext)["key"]),)

    def decrypt_cached(self, ciphertext: bytes, binding: Binding) -> Decrypted | None:
        return self.decrypt(ciphertext, binding) if self.inline else None

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


def client_error(code: str, operation: str, status: int = 400) -> ClientError:
    """A botocore ``ClientError`` as AWS answers it."""
    return ClientError(
        {"Error": {"Code": code, "Message": f"fake {code}"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        operation,
    )


class _Switches:
    """``denied`` answers AccessDeniedException (HTTP 400), ``down`` no answer at all; ``calls`` counts."""

    endpoint = "https://fake.amazonaws.com"

    def __init__(self) -> None:
        self.denied = False
        self.down = False
        self.calls: Counter[str] = Counter()

    def _call(self, operation: str) -> None:
        self.calls[operation] += 1
        if self.down:
            raise EndpointConnectionError(endpoint_url=self.endpoint)
        if self.denied:
            raise client_error("AccessDeniedException", operation)


class FakeDynamoDB(_Switches):
    """The subject-key table in memory: what ``SubjectKeyStore`` calls of a boto3 DynamoDB client."""

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[str, dict[str, Any]] = {}
        self.unprocessed_after = 100

    def get_item(
        self, *, TableName: str, Key: dict[str, Any], ConsistentRead: bool = False
    ) -> dict[str, Any]:
        self._call("GetItem")
        item = self.items.get(Key["pk"]["S"])
        return {} if item is None else {"Item": dict(item)}

    def put_item(
        self, *, TableName: str, Item: dict[str, Any], ConditionExpression: str | None = None
    ) -> dict[str, Any]:
        self._call("PutItem")
        pk = Item["pk"]["S"]
        if ConditionExpression == "attribute_not_exists(pk)" and pk in self.items:
            raise client_error("ConditionalCheckFailedException", "PutItem")
        self.items[pk] = dict(Item)
        return {}

    def batch_get_item(self, *, RequestItems: dict[str, Any]) -> dict[str, Any]:
        """Answers up to ``unprocessed_after`` keys per call and leaves the rest unprocessed, as DynamoDB may."""
        self._call("BatchGetItem")
        ((table, request),) = RequestItems.items()
        keys = request["Keys"]
        assert len(keys) <= 100, "DynamoDB takes at most 100 keys per BatchGetItem"
        now, later = keys[: self.unprocessed_after], keys[self.unprocessed_after :]
        found = [dict(self.items[k["pk"]["S"]]) for k in now if k["pk"]["S"] in self.items]
        answer: dict[str, Any] = {"Responses": {table: found}}
        if later:
            answer["UnprocessedKeys"] = {table: {**request, "Keys": later}}
        return answer

    def delete_item(
        self, *, TableName: str, Key: dict[str, Any], ReturnValues: str = "NONE"
    ) -> dict[str, Any]:
        self._call("DeleteItem")
        old = self.items.pop(Key["pk"]["S"], None)
        return {"Attributes": old} if old is not None and ReturnValues == "ALL_OLD" else {}


class FakeKms(_Switches):
    """KMS data keys in memory: the "ciphertext blob" carries the key and its context in clear, and
    ``decrypt`` gives the key back only under the same context."""

    MAGIC = b"FAKEKMS1:"

    def generate_data_key(
        self, *, KeyId: str, KeySpec: str, EncryptionContext: dict[str, str]
    ) -> dict[str, Any]:
        self._call("GenerateDataKey")
        key = os.urandom(32)
        body = {"key_id": KeyId, "ctx": EncryptionContext, "pt": base64.b64encode(key).decode()}
        return {"KeyId": KeyId, "Plaintext": key, "CiphertextBlob": self.MAGIC + json.dumps(body).encode()}

    def decrypt(self, *, CiphertextBlob: bytes, EncryptionContext: dict[str, str]) -> dict[str, Any]:
        self._call("Decrypt")
        blob = bytes(CiphertextBlob)
        if not blob.startswith(self.MAGIC):
            raise client_error("InvalidCiphertextException", "Decrypt")
        body = json.loads(blob[len(self.MAGIC) :])
        if body["ctx"] != EncryptionContext:
            raise client_error("InvalidCiphertextException", "Decrypt")
        return {"KeyId": body["key_id"], "Plaintext": base64.b64decode(body["pt"])}


SUBJECT_KEY_TABLE = "keyfan-subject-keys"
OWNER_KEY_IDS = {
    "sales": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/sales",
    "finance": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/finance",
}


def fake_subject_keys(
    *,
    dynamodb: FakeDynamoDB | None = None,
    kms: FakeKms | None = None,
    clock: Callable[[], float] = time.monotonic,
    max_age_seconds: float = 30.0,
    max_entries: int = 100_000,
    key_ids: Mapping[str, str] | None = None,
) -> SubjectKeys:
    """``SubjectKeys`` over a ``SubjectKeyStore`` over the fakes (new ones unless given: pass the owner's
    to a reader). ``key_ids`` is the owner's (``OWNER_KEY_IDS``); a reader passes none."""
    store = SubjectKeyStore(
        dynamodb=dynamodb if dynamodb is not None else FakeDynamoDB(),
        kms=kms if kms is not None else FakeKms(),
        table=SUBJECT_KEY_TABLE,
        key_ids=dict(key_ids or {}),
        max_age_seconds=max_age_seconds,
        clock=clock,
    )
    return SubjectKeys(store, max_age_seconds=max_age_seconds, max_entries=max_entries, clock=clock)


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


class FakeClock:
    """A clock the test moves by hand (``clock.now += 31``), for caches and timers that take a ``clock``."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
