"""Wire v2 through the services' own wiring: ``owner_encryptor`` seals, ``record_pipeline`` with
``consumer_decryptors`` reads, against moto's KMS with IAM on (the ``kms`` fixture of
``test_crypto_datakeys``: the owner may only GenerateDataKey, each reader may only Decrypt its own key).

The tamper classes of the reliability issue, re-run against v2: a bit flipped in every part of the value,
wrapped keys swapped between departments, and every bound field (AAD) swapped in the headers. Each record
ends in exactly one outcome, with no retry, for the department that can read it and for the one that
cannot; and a consumer reads v1 and v2 records side by side.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from finance_consumer.handler import FinanceHandler
from keyfan.consumer.app import record_pipeline
from keyfan.consumer.identity import consumer_decryptors
from keyfan.consumer.outcomes import Outcome
from keyfan.consumer.pipeline import RecordPipeline
from keyfan.consumer.records import RawRecord
from keyfan.crypto import wire2
from keyfan.departments import DepartmentRegistry
from keyfan.envelope import CONTENT_ESDK, CONTENT_V2, H_EVENT_ID, H_EVENT_TYPE, H_KEY_ARN, H_SCHEMA_VERSION
from keyfan.generation import generate_events
from keyfan.owner import owner_encryptor
from keyfan.settings import ConsumerSettings, OwnerSettings
from sales_consumer.handler import SalesHandler
from tests.factories import REPO, ListAudit, ListDeadLetters, OwnerRecord, owner_record
from tests.functional.test_crypto_datakeys import ACCOUNT, Kms, _botocore

pytestmark = pytest.mark.functional

TOPIC = "keyfan.events"
REGISTRY = DepartmentRegistry.load(REPO / "departments.toml")
SALES_EVENTS = generate_events(4, ["sales"], seed=91)
FINANCE_EVENTS = generate_events(2, ["finance"], seed=92)


def _records(kms: Kms, wire: str = "v2") -> list[OwnerRecord]:
    settings = OwnerSettings.model_construct(wire=wire)
    encryptor = owner_encryptor(settings, kms.aliases, botocore_session=_botocore(kms.owner))
    return [owner_record(encryptor, REGISTRY, e, TOPIC) for e in [*SALES_EVENTS, *FINANCE_EVENTS]]


def _pipeline(kms: Kms, department: str) -> RecordPipeline:
    session = kms.sales_reader if department == "sales" else kms.finance_reader
    settings = ConsumerSettings.model_construct(department=department, group_id=f"keyfan-{department}")
    return record_pipeline(
        settings,
        SalesHandler() if department == "sales" else FinanceHandler(),
        registry=REGISTRY,
        decryptors=consumer_decryptors(settings, (ACCOUNT,), botocore_session=_botocore(session)),
        principal=f"{department}-reader",
        store={},
        audit=ListAudit(),
        dead_letters=ListDeadLetters(),
        metrics_registry=CollectorRegistry(),
    )


def _raw(record: OwnerRecord, offset: int, **changes: Any) -> RawRecord:
    raw = RawRecord(TOPIC, record.partition, offset, record.key, record.value, list(record.headers))
    return dataclasses.replace(raw, **changes)


async def _outcome(pipeline: RecordPipeline, record: RawRecord) -> tuple[str, str]:
    verdict = await pipeline.process(record)
    assert not isinstance(verdict, wire2.Envelope)
    return verdict.outcome.value, verdict.reason  # type: ignore[union-attr]


def _flip(value: bytes, index: int, bit: int = 0) -> bytes:
    flipped = bytearray(value)
    flipped[index] ^= 1 << bit
    return bytes(flipped)


def _header(record: OwnerRecord, name: str, value: bytes) -> list[tuple[str, bytes]]:
    return [(n, value if n == name else v) for n, v in record.headers]


def _offsets(value: bytes) -> dict[str, int]:
    """Where each part of a v2 value starts (the layout of ``wire2``)."""
    envelope = wire2.parse(value)
    arn_at = 4
    wrapped_at = arn_at + len(envelope.key_arn) + 2
    commitment_at = wrapped_at + len(envelope.wrapped_key)
    nonce_at = commitment_at + wire2.COMMITMENT_BYTES
    ciphertext_at = nonce_at + wire2.NONCE_BYTES
    return {
        "arn": arn_at,
        "wrapped": wrapped_at,
        "commitment": commitment_at,
        "nonce": nonce_at,
        "body": ciphertext_at,
    }


def _in_key_id(value: bytes) -> int:
    """A decimal digit of the key id inside the ARN: flipping its low bit keeps the ARN well formed."""
    envelope = wire2.parse(value)
    key_id_at = 4 + envelope.key_arn.index("key/") + 4
    return next(i for i in range(key_id_at, 4 + len(envelope.key_arn)) if chr(value[i]).isdigit())


Tamper = Callable[[OwnerRecord, OwnerRecord], dict[str, Any]]
DENIED = ("access_denied", "kms_access_denied")
# finance was denied the sales key on the good record before: the denial memory answers, KMS is not asked
REMEMBERED = ("access_denied", "denial_remembered")

# name -> (tamper of a sales record, given a finance record; sales's outcome; finance's outcome)
TAMPERS: dict[str, tuple[Tamper, tuple[str, str], tuple[str, str]]] = {
    "version byte": (
        lambda s, f: {"value": _flip(s.value, 0)},
        ("dead_letter", "bad_envelope"),
        ("dead_letter", "bad_envelope"),
    ),
    "key-reference kind": (
        lambda s, f: {"value": _flip(s.value, 1)},
        ("dead_letter", "bad_envelope"),
        ("dead_letter", "bad_envelope"),
    ),
    "key ARN length": (
        lambda s, f: {"value": _flip(s.value, 2, 7)},
        ("dead_letter", "bad_envelope"),
        ("dead_letter", "bad_envelope"),
    ),
    "key ARN": (
        lambda s, f: {"value": _flip(s.value, _in_key_id(s.value))},
        ("dead_letter", "key_arn_mismatch"),
        ("dead_letter", "key_arn_mismatch"),
    ),
    "wrapped key": (
        lambda s, f: {"value": _flip(s.value, _offsets(s.value)["commitment"] - 1)},
        ("dead_letter", "invalid_ciphertext"),
        REMEMBERED,
    ),
    "commitment": (
        lambda s, f: {"value": _flip(s.value, _offsets(s.value)["commitment"] + 3)},
        ("dead_letter", "bad_commitment"),
        REMEMBERED,
    ),
    "nonce": (
        lambda s, f: {"value": _flip(s.value, _offsets(s.value)["nonce"])},
        ("dead_letter", "bad_tag"),
        REMEMBERED,
    ),
    "ciphertext": (
        lambda s, f: {"value": _flip(s.value, _offsets(s.value)["body"] + 5)},
        ("dead_letter", "bad_tag"),
        REMEMBERED,
    ),
    "tag": (lambda s, f: {"value": _flip(s.value, len(s.value) - 1)}, ("dead_letter", "bad_tag"), REMEMBERED),
    "truncated tag": (lambda s, f: {"value": s.value[:-1]}, ("dead_letter", "bad_tag"), REMEMBERED),
    # the wrapped key and ARN of a finance record inside a sales record, the key ARN header following
    "finance's wrapped key, header following": (
        lambda s, f: {
            "value": dataclasses.replace(
                wire2.parse(s.value),
                key_arn=wire2.parse(f.value).key_arn,
                wrapped_key=wire2.parse(f.value).wrapped_key,
            ).to_bytes(),
            "headers": _header(s, H_KEY_ARN, wire2.parse(f.value).key_arn.encode()),
        },
        DENIED,  # IAM: the sales role may not use finance's key
        # finance may use its key, but the record claims sales: KMS refuses the context {department: sales}
        ("dead_letter", "invalid_ciphertext"),
    ),
    "finance's wrapped key, header not following": (
        lambda s, f: {
            "value": dataclasses.replace(
                wire2.parse(s.value), wrapped_key=wire2.parse(f.value).wrapped_key
            ).to_bytes()
        },
        # KMS: finance's blob is not the sales key's. moto answers AccessDeniedException for a KeyId that is
        # not the blob's key; AWS answers IncorrectKeyException (``invalid_ciphertext``): refused either way
        DENIED,
        REMEMBERED,
    ),
    # AAD swaps: each bound field claimed differently in the headers (or the topic) than sealed
    "event id header": (
        lambda s, f: {"headers": _header(s, H_EVENT_ID, str(SALES_EVENTS[3].event_id).encode())},
        ("dead_letter", "bad_tag"),
        REMEMBERED,
    ),
    "event type header": (
        lambda s, f: {"headers": _header(s, H_EVENT_TYPE, b"order.refunded")},
        ("dead_letter", "bad_tag"),
        REMEMBERED,
    ),
    "schema version header": (
        lambda s, f: {"headers": _header(s, H_SCHEMA_VERSION, b"2")},
        ("dead_letter", "bad_tag"),
        REMEMBERED,
    ),
    "topic": (lambda s, f: {"topic": "keyfan.other"}, ("dead_letter", "bad_tag"), REMEMBERED),
    "finance's value under sales headers": (
        lambda s, f: {
            "value": f.value,
            "headers": _header(s, H_KEY_ARN, wire2.parse(f.value).key_arn.encode()),
        },
        DENIED,
        ("dead_letter", "invalid_ciphertext"),  # the headers claim sales: KMS refuses the context
    ),
}


@pytest.mark.parametrize("name", list(TAMPERS))
async def test_every_v2_tamper_ends_in_one_outcome_for_each_reader_and_no_retry(kms: Kms, name: str) -> None:
    tamper, for_sales, for_finance = TAMPERS[name]
    records = _records(kms)
    sale, payment = records[0], records[len(SALES_EVENTS)]
    for department, expected in (("sales", for_sales), ("finance", for_finance)):
        pipeline = _pipeline(kms, department)
        # given the good record first (its data key cached, where the reader may have it)
        good = await _outcome(pipeline, _raw(sale, 0))
        assert good == (("decrypted", "ok") if department == "sales" else DENIED)
        # when the tampered copy follows
        verdict = await _outcome(pipeline, _raw(sale, 1, **tamper(sale, payment)))
        # then one outcome, the expected one, and no retry
        assert verdict == expected, (department, name)
        assert pipeline.metrics.snapshot()["retries"] == 0
        outcomes = pipeline.store[str(sale.partition)]["outcomes"]
        assert sum(outcomes.values()) == 2
        if expected[0] == "dead_letter":
            assert [reason for _, reason in pipeline.dead_letters.records] == [expected[1]]  # type: ignore[attr-defined]


async def test_v2_and_v1_records_are_read_side_by_side_with_one_kms_call_per_data_key(kms: Kms) -> None:
    v2, v1 = _records(kms, "v2"), _records(kms, "esdk")
    assert {dict(r.headers)["keyfan-content"] for r in v2} == {CONTENT_V2.encode()}
    assert {dict(r.headers)["keyfan-content"] for r in v1} == {CONTENT_ESDK.encode()}
    assert {dict(r.headers)["keyfan-wire"] for r in v2} == {b"2"}
    sales = _pipeline(kms, "sales")
    offsets: dict[int, int] = {}
    outcomes: list[Outcome] = []
    for record in [*v2, *v1, *v2]:  # the v2 records twice: the second time as other events of the topic
        offset = offsets[record.partition] = offsets.get(record.partition, -1) + 1
        verdict = await sales.process(_raw(record, offset))
        outcomes.append(verdict.outcome)  # type: ignore[union-attr]
    sales_count, finance_count = len(SALES_EVENTS), len(FINANCE_EVENTS)
    # the repeats are the same event ids: duplicates, not counted twice
    assert outcomes.count(Outcome.DECRYPTED) == sales_count
    assert outcomes.count(Outcome.DUPLICATE) == 2 * sales_count
    assert outcomes.count(Outcome.ACCESS_DENIED) == 3 * finance_count
    # v2: one Decrypt for the sales data key, one for the finance key (denied, then remembered);
    # v1: the SDK's own cache, one Decrypt for sales' data key (finance's denial is remembered by key ARN)
    assert sales.metrics.snapshot()["kms_calls"] == 3
