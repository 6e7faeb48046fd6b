"""The per-record pipeline with a fake decryptor: every outcome, retry in place, dedupe, no plaintext."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from keyfan.consumer.denials import DenialMemory
from keyfan.consumer.metrics import ConsumerMetrics
from keyfan.consumer.outcomes import Outcome
from keyfan.consumer.pipeline import APPLIED_OFFSET, RawRecord, RecordPipeline, RetryPolicy
from keyfan.envelope import CONTENT_ESDK, CONTENT_PLAINTEXT, H_EVENT_ID, RecordMetadata
from keyfan.generation import generate_events
from sales_consumer import SalesHandler
from tests.factories import FakeDecryptor, ListAudit, ListDeadLetters, fake_key_arn, fake_record

EVENTS = generate_events(20, ["sales", "finance"], seed=11)
SALES = [e for e in EVENTS if e.department == "sales"]
FINANCE = [e for e in EVENTS if e.department == "finance"]
PRINCIPAL = "arn:aws:sts::123456789012:assumed-role/keyfan-sales-consumer/t"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Harness:
    def __init__(self, accepted_contents: frozenset[str] = frozenset({CONTENT_ESDK})) -> None:
        self.decryptor = FakeDecryptor(denied={fake_key_arn("finance")})
        self.audit = ListAudit()
        self.dlq = ListDeadLetters()
        self.store: dict[str, Any] = {}
        self.clock = Clock()
        self.sleeps: list[float] = []
        self.on_sleep: Callable[[int], None] = lambda attempt: None
        self.metrics = ConsumerMetrics("sales")
        self.metrics.watch(lambda: dict(self.decryptor.calls), lambda: 0)
        self.pipeline = RecordPipeline(
            department="sales",
            consumer_group="keyfan-sales",
            principal=PRINCIPAL,
            decryptor=self.decryptor,
            handler=SalesHandler(),
            store=self.store,
            audit=self.audit,
            dead_letters=self.dlq,
            denials=DenialMemory(30, clock=self.clock),
            metrics=self.metrics,
            retry=RetryPolicy(0.2, 5.0),
            sleep=self._sleep,
            accepted_contents=accepted_contents,
        )

    async def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.on_sleep(len(self.sleeps))


@pytest.fixture
def h() -> Harness:
    return Harness()


async def test_decrypted_applies_and_audits(h: Harness) -> None:
    verdict = await h.pipeline.process(fake_record(SALES[0], partition=1, offset=5))
    assert verdict.outcome is Outcome.DECRYPTED
    assert h.store["1"][APPLIED_OFFSET] == 5
    assert h.store["1"]["state"]["orders"] == 1
    [audit] = h.audit.records
    assert (audit.outcome, audit.event_id, audit.partition, audit.offset) == (
        Outcome.DECRYPTED,
        str(SALES[0].event_id),
        1,
        5,
    )
    assert audit.key_arn == fake_key_arn("sales") and audit.principal == PRINCIPAL
    assert h.dlq.records == []


async def test_denied_is_audited_remembered_and_skipped(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "keyfan.consumer")
    # given two finance records under a key sales may not use
    first = await h.pipeline.process(fake_record(FINANCE[0], partition=3, offset=0))
    second = await h.pipeline.process(fake_record(FINANCE[1], partition=3, offset=1))
    # then both are denied, but only the first asked KMS
    assert (first.outcome, first.reason) == (Outcome.ACCESS_DENIED, "kms_access_denied")
    assert (second.outcome, second.reason) == (Outcome.ACCESS_DENIED, "denial_remembered")
    assert h.decryptor.calls["Decrypt"] == 1
    assert [a.outcome for a in h.audit.records] == [Outcome.ACCESS_DENIED] * 2
    assert h.audit.records[0].key_arn == fake_key_arn("finance")
    assert h.store == {} and h.dlq.records == []
    assert h.metrics.snapshot()["access_denied"] == 2
    warn = [r for r in caplog.records if getattr(r, "event", None) == "record_access_denied"]
    assert len(warn) == 2
    assert warn[0].event_id == str(FINANCE[0].event_id)  # type: ignore[attr-defined]
    assert warn[0].key_arn == fake_key_arn("finance")  # type: ignore[attr-defined]
    assert warn[0].partition == 3 and warn[0].offset == 0  # type: ignore[attr-defined]


async def test_grant_takes_effect_after_the_denial_ttl(h: Harness) -> None:
    await h.pipeline.process(fake_record(FINANCE[0], partition=3, offset=0))
    # when IAM grants the key (the fake stops denying) ...
    h.decryptor.denied.clear()
    # ... the memory still answers within the TTL, without KMS
    assert (
        await h.pipeline.process(fake_record(FINANCE[1], partition=3, offset=1))
    ).outcome is Outcome.ACCESS_DENIED
    # and after the TTL the next record is decrypted
    h.clock.now += 30
    verdict = await h.pipeline.process(fake_record(FINANCE[2], partition=3, offset=2))
    assert verdict.outcome is Outcome.DECRYPTED
    assert h.store["3"]["state"]["foreign_events"] == {"finance": 1}


async def test_outage_retries_in_place_until_kms_recovers(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "keyfan.consumer")
    h.decryptor.down = True
    seen_during_outage: list[tuple[int, int, int]] = []

    def recover_after_five(attempt: int) -> None:
        seen_during_outage.append((len(h.audit.records), len(h.store), len(h.dlq.records)))
        if attempt == 5:
            h.decryptor.down = False

    h.on_sleep = recover_after_five
    verdict = await h.pipeline.process(fake_record(SALES[0], partition=0, offset=9))
    # nothing was audited, stored or dead-lettered while KMS was down: the record was not skipped
    assert seen_during_outage == [(0, 0, 0)] * 5
    # exponential backoff, capped
    assert h.sleeps == [0.2, 0.4, 0.8, 1.6, 3.2]
    # and once KMS is back the same record is decrypted
    assert verdict.outcome is Outcome.DECRYPTED
    assert h.store["0"][APPLIED_OFFSET] == 9
    assert h.metrics.snapshot()["retries"] == 5
    attempts = [r.attempt for r in caplog.records if getattr(r, "event", None) == "record_retry"]  # type: ignore[attr-defined]
    assert attempts == [1, 2, 3, 4, 5]
    assert h.decryptor.denied == {fake_key_arn("finance")}  # an outage is never remembered as a denial
    assert h.pipeline.denials.active() == ()


def test_backoff_caps_at_max() -> None:
    policy = RetryPolicy(0.2, 5.0)
    assert [policy.delay(n) for n in (1, 2, 6, 50)] == [0.2, 0.4, 5.0, 5.0]


async def test_audit_publish_failure_is_retried_not_skipped(h: Harness) -> None:
    h.audit.fail = 2
    verdict = await h.pipeline.process(fake_record(SALES[0], partition=0, offset=0))
    assert verdict.outcome is Outcome.DECRYPTED
    assert len(h.sleeps) == 2 and len(h.audit.records) == 1
    assert h.store["0"]["state"]["orders"] == 1


def _tampered_headers(event, **changes):
    meta = RecordMetadata.for_event(event, key_arn=fake_key_arn(event.department))
    return meta.model_copy(update=changes).to_headers()


CORRUPT_CASES: dict[str, Callable[[], RawRecord]] = {
    "bad_headers": lambda: fake_record(SALES[0], headers=[]),
    "bad_ciphertext": lambda: RawRecord(
        "keyfan.events",
        0,
        0,
        b"k",
        (fake_record(SALES[0]).value or b"")[:10],
        fake_record(SALES[0]).headers,
    ),
    "key_arn_mismatch": lambda: fake_record(SALES[0], headers=_tampered_headers(SALES[0], key_arn="arn:x")),
    "context_mismatch": lambda: fake_record(
        SALES[0],
        context={
            "department": "sales",
            "event_type": "other",
            "schema_version": "1",
            "topic": "keyfan.events",
        },
    ),
    "event_id_mismatch": lambda: fake_record(SALES[0], headers=_tampered_headers(SALES[1])),
    "bad_plaintext": lambda: fake_record(SALES[0], plaintext=b"not json"),
    "invalid_payload": lambda: fake_record(
        SALES[0], plaintext=b'{"event_id": "%s", "data": {"x": 1}}' % str(SALES[0].event_id).encode()
    ),
    "unsupported_content": lambda: fake_record(
        SALES[0], headers=_tampered_headers(SALES[0], content="plaintext")
    ),
}


@pytest.mark.parametrize("reason", sorted(CORRUPT_CASES))
async def test_corrupt_or_tampered_goes_to_dlq(h: Harness, reason: str) -> None:
    record = CORRUPT_CASES[reason]()
    verdict = await h.pipeline.process(record)
    assert (verdict.outcome, verdict.reason) == (Outcome.DEAD_LETTER, reason)
    assert h.dlq.records == [(record, reason)]
    [audit] = h.audit.records
    assert audit.outcome is Outcome.DEAD_LETTER and audit.reason == reason
    assert h.store == {}


async def test_a_pipeline_reads_only_the_contents_it_is_told_to_accept() -> None:
    # The services accept "esdk" only (above: "plaintext" is dead-lettered); the benchmark's plaintext
    # twin is a pipeline that accepts "plaintext", and then refuses "esdk".
    twin = Harness(accepted_contents=frozenset({CONTENT_PLAINTEXT}))
    plain = fake_record(SALES[0], headers=_tampered_headers(SALES[0], content=CONTENT_PLAINTEXT))
    assert (await twin.pipeline.process(plain)).outcome is Outcome.DECRYPTED
    verdict = await twin.pipeline.process(fake_record(SALES[1], offset=1))
    assert (verdict.outcome, verdict.reason) == (Outcome.DEAD_LETTER, "unsupported_content")


async def test_redelivered_records_are_not_counted_twice(h: Harness) -> None:
    for offset, event in enumerate(SALES[:3]):
        await h.pipeline.process(fake_record(event, partition=2, offset=offset))
    calls = h.decryptor.calls["Decrypt"]
    # when the partition is redelivered from offset 1 (a restart before the commit)
    for offset, event in enumerate(SALES[:3]):
        if offset >= 1:
            verdict = await h.pipeline.process(fake_record(event, partition=2, offset=offset))
            assert verdict.reason == "duplicate"
    assert h.store["2"]["state"]["orders"] == 3
    assert h.decryptor.calls["Decrypt"] == calls  # no KMS for duplicates
    assert h.metrics.snapshot()["duplicates"] == 2
    assert [a.reason for a in h.audit.records] == ["ok", "ok", "ok", "duplicate", "duplicate"]


async def test_logs_and_audit_never_hold_plaintext(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "keyfan.consumer")
    h.decryptor.denied.clear()
    for offset, event in enumerate(EVENTS):
        await h.pipeline.process(fake_record(event, partition=offset % 6, offset=offset))
    text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    audit = "\n".join(a.model_dump_json() for a in h.audit.records)
    for event in EVENTS:
        for secret in _secrets(event.data):
            assert secret not in text
            assert secret not in audit


def _secrets(data: dict[str, Any]) -> list[str]:
    keys = ("card_number", "iban", "email", "customer_name", "phone")
    return [str(data[k]) for k in keys if k in data]


def test_headers_are_bytes() -> None:
    record = fake_record(SALES[0])
    assert isinstance(record.headers, list)
    assert any(name == H_EVENT_ID for name, _ in record.headers)
