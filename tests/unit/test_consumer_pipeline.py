"""The per-record pipeline with a fake decryptor: every outcome, the position, bounded and unbounded
retries, dedupe by offset and by event id, misrouting, no plaintext."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from keyfan.consumer.denials import DenialMemory
from keyfan.consumer.metrics import ConsumerMetrics
from keyfan.consumer.outcomes import Outcome
from keyfan.consumer.pipeline import RecordPipeline
from keyfan.consumer.position import POSITION, Gap
from keyfan.consumer.records import RawRecord
from keyfan.departments import DepartmentRegistry
from keyfan.envelope import CONTENT_ESDK, CONTENT_PLAINTEXT, H_EVENT_ID, RecordMetadata
from keyfan.exceptions import Interrupted
from keyfan.generation import generate_events
from keyfan.retry import RetryPolicy
from sales_consumer import SalesHandler
from tests.factories import (
    REPO,
    FakeClock,
    FakeDecryptor,
    ListAudit,
    ListDeadLetters,
    fake_key_arn,
    fake_record,
    routed_partition,
)

REGISTRY = DepartmentRegistry.load(REPO / "departments.toml")
EVENTS = generate_events(20, ["sales", "finance"], seed=11)
SALES = [e for e in EVENTS if e.department == "sales"]
FINANCE = [e for e in EVENTS if e.department == "finance"]
PRINCIPAL = "arn:aws:sts::123456789012:assumed-role/keyfan-sales-consumer/t"


class Harness:
    def __init__(self, content: str = CONTENT_ESDK, window: int = 100_000) -> None:
        self.decryptor = FakeDecryptor(denied={fake_key_arn("finance")})
        self.decryptor.content = content  # the one content this pipeline reads
        self.audit = ListAudit()
        self.dlq = ListDeadLetters()
        self.store: dict[str, Any] = {}
        self.clock = FakeClock()
        self.sleeps: list[float] = []
        self.on_sleep: Callable[[int], None] = lambda attempt: None
        self.metrics = ConsumerMetrics("sales")
        self.metrics.watch(lambda: dict(self.decryptor.calls), lambda: 0)
        self.pipeline = RecordPipeline(
            department="sales",
            consumer_group="keyfan-sales",
            principal=PRINCIPAL,
            registry=REGISTRY,
            decryptors=(self.decryptor,),
            handler=SalesHandler(),
            store=self.store,
            audit=self.audit,
            dead_letters=self.dlq,
            denials=DenialMemory(30, clock=self.clock),
            metrics=self.metrics,
            retry=RetryPolicy(0.2, 5.0),
            dedupe_window_events=window,
            sleep=self._sleep,
        )

    async def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.on_sleep(len(self.sleeps))

    def next_record(self, event: Any, **overrides: Any) -> RawRecord:
        """``event`` at the next offset of its partition (the routed one unless overridden)."""
        partition = overrides.pop("partition", None)
        partition = routed_partition(event, REGISTRY) if partition is None else partition
        return fake_record(
            event, partition=partition, offset=self.pipeline.expected_offset(partition), **overrides
        )

    async def feed(self, event: Any, **overrides: Any) -> Any:
        return await self.pipeline.process(self.next_record(event, **overrides))

    def slot(self, event: Any) -> dict[str, Any]:
        return dict(self.store[str(routed_partition(event, REGISTRY))])


@pytest.fixture
def h() -> Harness:
    return Harness()


async def test_decrypted_applies_and_audits(h: Harness) -> None:
    record = h.next_record(SALES[0])
    verdict = await h.pipeline.process(record)
    assert verdict.outcome is Outcome.DECRYPTED
    slot = h.slot(SALES[0])
    assert slot[POSITION] == 0 and slot["state"]["orders"] == 1
    assert slot["outcomes"] == {"decrypted": 1}
    [audit] = h.audit.records
    assert (audit.outcome, audit.event_id, audit.partition, audit.offset) == (
        Outcome.DECRYPTED,
        str(SALES[0].event_id),
        record.partition,
        0,
    )
    assert audit.key_arn == fake_key_arn("sales") and audit.principal == PRINCIPAL
    assert h.dlq.records == []


async def test_denied_is_audited_remembered_and_counted(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "keyfan.consumer")
    # given two finance records under a key sales may not use, in one partition
    partition = routed_partition(FINANCE[0], REGISTRY)
    first = await h.feed(FINANCE[0], partition=partition)
    second = await h.feed(FINANCE[0], partition=partition)
    # then both are denied, but only the first asked KMS
    assert (first.outcome, first.reason) == (Outcome.ACCESS_DENIED, "kms_access_denied")
    assert (second.outcome, second.reason) == (Outcome.ACCESS_DENIED, "denial_remembered")
    assert h.decryptor.calls["Decrypt"] == 1
    assert [a.outcome for a in h.audit.records] == [Outcome.ACCESS_DENIED] * 2
    assert h.audit.records[0].key_arn == fake_key_arn("finance")
    # and the position moved past both, with the state untouched
    slot = h.store[str(partition)]
    assert slot[POSITION] == 1 and slot["outcomes"] == {"access_denied": 2}
    assert slot["state"] == SalesHandler().initial_state()
    assert h.dlq.records == []
    assert h.metrics.snapshot()["access_denied"] == 2
    warn = [r for r in caplog.records if getattr(r, "event", None) == "record_access_denied"]
    assert len(warn) == 2
    assert warn[0].event_id == str(FINANCE[0].event_id)  # type: ignore[attr-defined]
    assert warn[0].key_arn == fake_key_arn("finance")  # type: ignore[attr-defined]
    assert warn[0].partition == partition and warn[0].offset == 0  # type: ignore[attr-defined]


async def test_grant_takes_effect_after_the_denial_ttl(h: Harness) -> None:
    await h.feed(FINANCE[0])
    # when IAM grants the key (the fake stops denying) ...
    h.decryptor.denied.clear()
    # ... the memory still answers within the TTL, without KMS
    assert (await h.feed(FINANCE[1])).outcome is Outcome.ACCESS_DENIED
    # and after the TTL the next record is decrypted
    h.clock.now += 30
    verdict = await h.feed(FINANCE[2])
    assert verdict.outcome is Outcome.DECRYPTED
    assert h.slot(FINANCE[2])["state"]["foreign_events"] == {"finance": 1}


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
    verdict = await h.feed(SALES[0])
    # nothing was audited, stored or dead-lettered while KMS was down: the record was not skipped
    assert seen_during_outage == [(0, 0, 0)] * 5
    # exponential backoff, capped
    assert h.sleeps == [0.2, 0.4, 0.8, 1.6, 3.2]
    # and once KMS is back the same record is decrypted
    assert verdict.outcome is Outcome.DECRYPTED
    assert h.slot(SALES[0])[POSITION] == 0
    assert h.metrics.snapshot()["retries"] == 5
    attempts = [r.attempt for r in caplog.records if getattr(r, "event", None) == "record_retry"]  # type: ignore[attr-defined]
    assert attempts == [1, 2, 3, 4, 5]
    assert h.decryptor.denied == {fake_key_arn("finance")}  # an outage is never remembered as a denial
    assert h.pipeline.denials.active() == ()


async def test_outage_outlasts_the_unexpected_error_bound(h: Harness) -> None:
    # an outage is retried without a count limit, even past max_unexpected_attempts
    h.decryptor.down = True
    h.on_sleep = lambda attempt: setattr(h.decryptor, "down", attempt < 12)
    assert (await h.feed(SALES[0])).outcome is Outcome.DECRYPTED
    assert len(h.sleeps) == 12


def test_backoff_caps_at_max() -> None:
    policy = RetryPolicy(0.2, 5.0)
    assert [policy.delay(n) for n in (1, 2, 6, 50)] == [0.2, 0.4, 5.0, 5.0]


async def test_audit_publish_failure_is_retried_not_skipped(h: Harness) -> None:
    h.audit.fail = 2
    verdict = await h.feed(SALES[0])
    assert verdict.outcome is Outcome.DECRYPTED
    assert len(h.sleeps) == 2 and len(h.audit.records) == 1
    assert h.slot(SALES[0])["state"]["orders"] == 1


async def test_unexpected_error_is_retried_a_bounded_number_of_times_then_dead_lettered(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "keyfan.consumer")

    # given a handler bug that fails every time
    def broken(state: Any, metadata: Any, data: Any) -> Any:
        raise ZeroDivisionError("bug")

    h.pipeline.handler.apply = broken  # type: ignore[method-assign]
    record = h.next_record(SALES[0])
    verdict = await h.pipeline.process(record)
    # then it was tried max_unexpected_attempts (3) times, then dead-lettered with its type: no stall
    assert (verdict.outcome, verdict.reason) == (Outcome.DEAD_LETTER, "unexpected_ZeroDivisionError")
    assert len(h.sleeps) == 2
    assert h.dlq.records == [(record, "unexpected_ZeroDivisionError")]
    assert [a.reason for a in h.audit.records] == ["unexpected_ZeroDivisionError"]
    assert h.slot(SALES[0])["outcomes"] == {"dead_letter": 1}
    assert h.metrics.snapshot()["reasons"] == {"dead_letter:unexpected_ZeroDivisionError": 1}
    [line] = [r for r in caplog.records if getattr(r, "event", None) == "record_dead_lettered"]
    assert line.levelno == logging.ERROR
    # and the next record of the partition goes on normally
    h.pipeline.handler.apply = SalesHandler().apply  # type: ignore[method-assign]
    assert (await h.feed(SALES[0], partition=record.partition)).outcome is Outcome.DECRYPTED


async def test_a_passing_unexpected_error_is_retried_and_not_dead_lettered(h: Harness) -> None:
    calls = []
    apply = h.pipeline.handler.apply

    def flaky(state: Any, metadata: Any, data: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("transient bug")
        return apply(state, metadata, data)

    h.pipeline.handler.apply = flaky  # type: ignore[method-assign]
    assert (await h.feed(SALES[0])).outcome is Outcome.DECRYPTED
    assert h.dlq.records == [] and len(calls) == 2


async def test_interrupt_abandons_a_retrying_record_without_an_outcome(h: Harness) -> None:
    # given KMS is down and the record is being retried
    h.decryptor.down = True
    h.on_sleep = lambda attempt: h.pipeline.interrupt() if attempt == 3 else None
    record = h.next_record(SALES[0])
    # when a rebalance or shutdown interrupts
    with pytest.raises(Interrupted):
        await h.pipeline.process(record)
    # then the record has no outcome and the position did not move: it is read again later
    assert h.store == {} and h.audit.records == [] and h.dlq.records == []
    with pytest.raises(Interrupted):
        await h.pipeline.process(record)
    # and after the rebalance the same record is processed
    h.pipeline.resume()
    h.decryptor.down = False
    assert (await h.pipeline.process(record)).outcome is Outcome.DECRYPTED


def _tampered_headers(event, **changes):
    meta = RecordMetadata.for_event(event, key_arn=fake_key_arn(event.department))
    return meta.model_copy(update=changes).to_headers()


def _with_value(record: RawRecord, value: bytes) -> RawRecord:
    return RawRecord(record.topic, record.partition, record.offset, record.key, value, record.headers)


CORRUPT_CASES: dict[str, Callable[[Harness], RawRecord]] = {
    "bad_headers": lambda h: h.next_record(SALES[0], headers=[]),
    "bad_ciphertext": lambda h: _with_value(
        h.next_record(SALES[0]), (h.next_record(SALES[0]).value or b"")[:10]
    ),
    "empty_value": lambda h: _with_value(h.next_record(SALES[0]), b""),
    "key_arn_mismatch": lambda h: h.next_record(
        SALES[0], headers=_tampered_headers(SALES[0], key_arn="arn:x")
    ),
    "context_mismatch": lambda h: h.next_record(
        SALES[0],
        context={
            "department": "sales",
            "event_type": "other",
            "schema_version": "1",
            "topic": "keyfan.events",
        },
    ),
    "event_id_mismatch": lambda h: h.next_record(SALES[0], headers=_tampered_headers(SALES[1])),
    "bad_plaintext": lambda h: h.next_record(SALES[0], plaintext=b"not json"),
    "invalid_payload": lambda h: h.next_record(
        SALES[0], plaintext=b'{"event_id": "%s", "data": {"x": 1}}' % str(SALES[0].event_id).encode()
    ),
    "unsupported_content": lambda h: h.next_record(
        SALES[0], headers=_tampered_headers(SALES[0], content="plaintext")
    ),
}


@pytest.mark.parametrize("reason", sorted(CORRUPT_CASES))
async def test_corrupt_or_tampered_goes_to_dlq(h: Harness, reason: str) -> None:
    record = CORRUPT_CASES[reason](h)
    verdict = await h.pipeline.process(record)
    assert (verdict.outcome, verdict.reason) == (Outcome.DEAD_LETTER, reason)
    assert h.dlq.records == [(record, reason)]
    [audit] = h.audit.records
    assert audit.outcome is Outcome.DEAD_LETTER and audit.reason == reason
    slot = h.store[str(record.partition)]
    assert slot[POSITION] == record.offset and slot["outcomes"] == {"dead_letter": 1}
    assert slot["state"] == SalesHandler().initial_state()


async def test_a_record_outside_its_departments_partitions_is_misrouted(h: Harness) -> None:
    # given a sales record copied into a finance partition: dead-lettered before any KMS call
    stray = await h.feed(SALES[0], partition=REGISTRY.get("finance").partitions[0])
    assert (stray.outcome, stray.reason) == (Outcome.DEAD_LETTER, "misrouted")
    assert h.decryptor.calls["Decrypt"] == 0


async def test_a_record_in_another_partition_of_its_department_is_misrouted(h: Harness) -> None:
    # given a sales record replayed into a sales partition its customer does not route to
    home = routed_partition(SALES[0], REGISTRY)
    other = next(p for p in REGISTRY.get("sales").partitions if p != home)
    verdict = await h.feed(SALES[0], partition=other)
    # then it is dead-lettered, not counted, so every copy of an event can only be in one partition
    assert (verdict.outcome, verdict.reason) == (Outcome.DEAD_LETTER, "misrouted")
    assert h.store[str(other)]["state"]["orders"] == 0


async def test_a_pipeline_reads_only_the_contents_it_has_a_decryptor_for() -> None:
    # The services read "keyfan-v2" and "esdk" (above: "plaintext" is dead-lettered); the benchmark's
    # plaintext twin is a pipeline with the plaintext decryptor only, and then refuses "esdk".
    twin = Harness(content=CONTENT_PLAINTEXT)
    plain = twin.next_record(SALES[0], headers=_tampered_headers(SALES[0], content=CONTENT_PLAINTEXT))
    assert (await twin.pipeline.process(plain)).outcome is Outcome.DECRYPTED
    verdict = await twin.feed(SALES[1], partition=plain.partition)
    assert (verdict.outcome, verdict.reason) == (Outcome.DEAD_LETTER, "unsupported_content")


async def test_redelivered_records_are_not_counted_twice(h: Harness) -> None:
    partition = routed_partition(SALES[0], REGISTRY)
    same_partition = [e for e in SALES if routed_partition(e, REGISTRY) == partition][:3]
    records = [await h.feed(event) for event in same_partition]
    assert [r.outcome for r in records] == [Outcome.DECRYPTED] * 3
    calls = h.decryptor.calls["Decrypt"]
    # when the partition is redelivered from offset 1 (a restart before the commit)
    for offset, event in enumerate(same_partition):
        if offset >= 1:
            verdict = await h.pipeline.process(fake_record(event, partition=partition, offset=offset))
            assert (verdict.outcome, verdict.reason) == (Outcome.DUPLICATE, "redelivered")
    slot = h.store[str(partition)]
    assert slot["state"]["orders"] == 3 and slot["outcomes"] == {"decrypted": 3}
    assert h.decryptor.calls["Decrypt"] == calls  # no KMS for redeliveries
    assert h.metrics.snapshot()["redelivered"] == 2
    assert [a.reason for a in h.audit.records] == ["ok", "ok", "ok", "redelivered", "redelivered"]


async def test_a_record_after_a_gap_is_not_processed(h: Harness) -> None:
    # given offsets 0 and 1 of a partition were never delivered
    partition = routed_partition(SALES[0], REGISTRY)
    verdict = await h.pipeline.process(fake_record(SALES[0], partition=partition, offset=2))
    # then the pipeline asks to seek back instead of processing (which would skip 0 and 1 for good)
    assert verdict == Gap(partition=partition, expected=0, offset=2)
    assert h.store == {} and h.audit.records == [] and h.decryptor.calls["Decrypt"] == 0


async def test_records_deleted_by_retention_before_they_were_read_are_counted_as_expired(h: Harness) -> None:
    # given the log of a partition now starts at offset 5 (retention deleted 0-4, never read)
    partition = routed_partition(SALES[0], REGISTRY)
    h.pipeline.log_start[partition] = 5
    verdict = await h.pipeline.process(fake_record(SALES[0], partition=partition, offset=5))
    assert verdict.outcome is Outcome.DECRYPTED
    assert h.store[str(partition)]["outcomes"] == {"decrypted": 1, "expired": 5}


async def test_the_same_event_at_a_new_offset_is_a_duplicate(h: Harness) -> None:
    # given an event applied once, then published again by the owner (at-least-once) at a new offset
    first = await h.feed(SALES[0])
    again = await h.feed(SALES[0])
    # then the copy is decrypted and checked, but counted as a duplicate, not applied again
    assert first.outcome is Outcome.DECRYPTED
    assert (again.outcome, again.reason) == (Outcome.DUPLICATE, "duplicate_event")
    slot = h.slot(SALES[0])
    assert slot["state"]["orders"] == 1
    assert slot["outcomes"] == {"decrypted": 1, "duplicate": 1}
    assert [a.outcome for a in h.audit.records] == [Outcome.DECRYPTED, Outcome.DUPLICATE]
    assert h.metrics.snapshot()["duplicate_events"] == 1


async def test_a_redelivery_whose_slot_was_lost_is_applied_not_taken_for_a_duplicate(h: Harness) -> None:
    # given a crash persisted the event-id entry but not the partition's slot
    record = h.next_record(SALES[0])
    await h.pipeline.process(record)
    del h.store[str(record.partition)]
    h.pipeline.events.invalidate()
    # when the same record (same coordinates) is delivered again, it is applied
    verdict = await h.pipeline.process(record)
    assert verdict.outcome is Outcome.DECRYPTED
    assert h.slot(SALES[0])["state"]["orders"] == 1


async def test_the_event_window_forgets_the_oldest_ids_beyond_its_size() -> None:
    # given a window of 3 events per department (1 per sales partition)
    small = Harness(window=3)
    partition = routed_partition(SALES[0], REGISTRY)
    same_partition = [e for e in SALES if routed_partition(e, REGISTRY) == partition][:2]
    for event in same_partition:
        await small.feed(event)
    # then only the newest id is kept for that partition
    ids = sorted(k for k in small.store if k.startswith("event:"))
    assert ids == [f"event:{same_partition[1].event_id}"]
    assert small.pipeline.events.size() == 1
    # and a replay of the forgotten event is beyond the window (the documented bound)
    assert (await small.feed(same_partition[0])).outcome is Outcome.DECRYPTED


async def test_logs_and_audit_never_hold_plaintext(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "keyfan.consumer")
    h.decryptor.denied.clear()
    for event in EVENTS:
        await h.feed(event)
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
