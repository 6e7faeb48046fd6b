"""The consumer pipeline on records whose personal fields are sealed apart under the subject's key: open,
shredded (forgotten) and withheld (IAM) records are all applied and counted, with their reason; a key-table
outage is retried in place; a tampered personal part is dead-lettered."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from typing import Any

import pytest

from finance_consumer import FinanceHandler
from keyfan.consumer.denials import DenialMemory
from keyfan.consumer.handler import DomainHandler
from keyfan.consumer.metrics import ConsumerMetrics
from keyfan.consumer.outcomes import Outcome
from keyfan.consumer.pipeline import RecordPipeline
from keyfan.consumer.records import RawRecord
from keyfan.crypto.subjectkeys import SubjectKeys
from keyfan.departments import DepartmentRegistry
from keyfan.envelope import Binding, RecordMetadata, SealedPersonal, seal
from keyfan.generation import generate_events
from keyfan.models import DepartmentEvent
from keyfan.personal_data import SHREDDED, WITHHELD, split
from keyfan.retry import RetryPolicy
from sales_consumer import SalesHandler
from tests.factories import (
    OWNER_KEY_IDS,
    REPO,
    FakeClock,
    FakeDecryptor,
    FakeDynamoDB,
    FakeKms,
    ListAudit,
    ListDeadLetters,
    fake_record,
    fake_subject_keys,
    routed_partition,
)

REGISTRY = DepartmentRegistry.load(REPO / "departments.toml")
TOPIC = "keyfan.events"
AGE = 30.0
EVENTS = generate_events(20, ["sales", "finance"], seed=31)
SALES = [e for e in EVENTS if e.department == "sales"]
FINANCE = [e for e in EVENTS if e.department == "finance"]
HANDLERS: dict[str, DomainHandler] = {"sales": SalesHandler(), "finance": FinanceHandler()}


class Harness:
    """One department's pipeline reading with its own subject keys, beside the owner's, over one fake table."""

    def __init__(self, department: str = "sales", *, with_subject_keys: bool = True) -> None:
        self.department = department
        self.clock = FakeClock()
        self.table = FakeDynamoDB()
        self.kms = FakeKms()
        self.owner = self._keys(key_ids=OWNER_KEY_IDS)
        self.reader = self._keys()
        self.decryptor = FakeDecryptor()
        self.audit = ListAudit()
        self.dlq = ListDeadLetters()
        self.store: dict[str, Any] = {}
        self.sleeps: list[float] = []
        self.on_sleep = lambda attempt: None
        self.metrics = ConsumerMetrics(department)
        self.pipeline = RecordPipeline(
            department=department,
            consumer_group=f"keyfan-{department}",
            principal="arn:aws:sts::123456789012:assumed-role/reader/t",
            registry=REGISTRY,
            decryptors=(self.decryptor,),
            handler=HANDLERS[department],
            store=self.store,
            audit=self.audit,
            dead_letters=self.dlq,
            denials=DenialMemory(30, clock=self.clock),
            metrics=self.metrics,
            retry=RetryPolicy(0.2, 5.0),
            sleep=self._sleep,
            subject_keys=self.reader if with_subject_keys else None,
        )

    def _keys(self, **kwargs: Any) -> SubjectKeys:
        return fake_subject_keys(
            dynamodb=self.table, kms=self.kms, clock=self.clock, max_age_seconds=AGE, **kwargs
        )

    async def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.on_sleep(len(self.sleeps))

    def record(self, event: DepartmentEvent, *, personal: SealedPersonal | None = None) -> RawRecord:
        """``event`` as the owner writes it with subject keys (``personal`` overrides its sealed part)."""
        data = event.model_dump(mode="json")["data"]
        part = split(event.department, data)
        assert part.subject is not None
        binding = Binding.of_event(event, TOPIC)
        sealed = self.owner.seal(binding, part.subject, part.personal) if personal is None else personal
        partition = routed_partition(event, REGISTRY)
        return fake_record(
            event,
            topic=TOPIC,
            partition=partition,
            offset=self.pipeline.expected_offset(partition),
            plaintext=seal(event, data=part.rest, personal=sealed),
        )

    def payloads_seen(self) -> list[dict[str, Any]]:
        """What the handler is given from now on, payload by payload (a spy around its ``apply``)."""
        seen: list[dict[str, Any]] = []
        apply = self.pipeline.handler.apply

        def spy(state: Any, metadata: Any, data: Any) -> Any:
            seen.append(dict(data))
            return apply(state, metadata, data)

        self.pipeline.handler.apply = spy  # type: ignore[method-assign]
        return seen

    async def feed(self, event: DepartmentEvent, **kwargs: Any) -> Any:
        return await self.pipeline.process(self.record(event, **kwargs))

    def state(self, event: DepartmentEvent) -> dict[str, Any]:
        return dict(self.store[str(routed_partition(event, REGISTRY))]["state"])


def plain_state(event: DepartmentEvent) -> dict[str, Any]:
    """What the handler makes of the whole payload: the aggregates must not depend on personal fields."""
    handler = HANDLERS[event.department]
    metadata = RecordMetadata.for_event(event, key_arn="k")
    return handler.apply(handler.initial_state(), metadata, event.model_dump(mode="json")["data"])


def forget(h: Harness, event: DepartmentEvent) -> None:
    part = split(event.department, event.model_dump(mode="json")["data"])
    assert part.subject is not None and h.owner.forget(event.department, part.subject)
    h.clock.now += AGE  # past the reader's cache age


@pytest.mark.parametrize("department", ["sales", "finance"])
async def test_open_personal_fields_reach_the_handler_and_the_record_is_ok(department: str) -> None:
    h = Harness(department)
    event = (SALES if department == "sales" else FINANCE)[0]
    record = h.record(event)
    assert b"card_number" not in record.value and b"customer_name" not in record.value
    verdict = await h.pipeline.process(record)
    assert (verdict.outcome, verdict.reason) == (Outcome.DECRYPTED, "ok")
    assert h.state(event) == plain_state(event)
    [audit] = h.audit.records
    assert (audit.outcome, audit.reason) == (Outcome.DECRYPTED, "ok")
    assert h.metrics.snapshot()["reasons"] == {"decrypted:ok": 1}


async def test_open_fields_are_the_exact_payload_the_handler_sees() -> None:
    h = Harness()
    seen = h.payloads_seen()
    await h.feed(SALES[0])
    assert seen == [SALES[0].model_dump(mode="json")["data"]]


async def test_a_shredded_record_is_applied_and_counted_with_its_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, "keyfan.consumer")
    h = Harness()
    event = SALES[0]
    record = h.record(event)  # sealed under the subject's key ...
    forget(h, event)  # ... which is then deleted
    verdict = await h.pipeline.process(record)
    assert (verdict.outcome, verdict.reason) == (Outcome.DECRYPTED, "subject_shredded")
    # the order and its revenue still count: only the personal fields are gone
    assert h.state(event) == plain_state(event)
    [audit] = h.audit.records
    assert (audit.outcome, audit.reason) == (Outcome.DECRYPTED, "subject_shredded")
    assert h.metrics.snapshot()["reasons"] == {"decrypted:subject_shredded": 1}
    assert h.metrics.snapshot()["decrypted"] == 1 and h.dlq.records == []
    [hint] = [r for r in caplog.records if getattr(r, "event", None) == "record_decrypted"]
    assert (hint.customer, hint.email) == (SHREDDED, SHREDDED)  # type: ignore[attr-defined]
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert event.data["customer_name"] not in logged and event.data["email"] not in logged


async def test_a_returning_subject_is_readable_again_and_its_old_records_stay_shredded() -> None:
    h = Harness()
    event = SALES[0]
    old = h.record(event)
    forget(h, event)
    assert (await h.pipeline.process(old)).reason == "subject_shredded"
    # a later order of the same customer: the owner makes a new key for the returning subject
    later = SALES[1].model_copy(
        update={"event_id": uuid.uuid4(), "data": {**SALES[1].data, "customer_id": event.data["customer_id"]}}
    )
    assert (await h.feed(later)).reason == "ok"
    again = RawRecord(
        old.topic, old.partition, h.pipeline.expected_offset(old.partition), old.key, old.value, old.headers
    )
    assert (
        await h.pipeline.process(again)
    ).reason == "duplicate_event"  # still the same event, still shredded
    assert h.metrics.snapshot()["reasons"] == {
        "decrypted:ok": 1,
        "decrypted:subject_shredded": 1,
        "duplicate:duplicate_event": 1,
    }


async def test_without_subject_keys_personal_fields_are_withheld() -> None:
    h = Harness(with_subject_keys=False)
    verdict = await h.feed(SALES[0])
    assert (verdict.outcome, verdict.reason) == (Outcome.DECRYPTED, "personal_withheld")
    assert h.state(SALES[0]) == plain_state(SALES[0])
    assert h.audit.records[0].reason == "personal_withheld"
    assert h.metrics.snapshot()["reasons"] == {"decrypted:personal_withheld": 1}


@pytest.mark.parametrize("service", ["table", "kms"])
async def test_a_denied_subject_key_is_withheld_and_the_rest_applied(service: str) -> None:
    h = Harness()
    records = [h.record(event) for event in SALES[:3]]  # the owner sealed them before the denial
    (h.table if service == "table" else h.kms).denied = True
    verdicts = [await h.pipeline.process(record) for record in records]
    assert {(v.outcome, v.reason) for v in verdicts} == {(Outcome.DECRYPTED, "personal_withheld")}
    assert h.metrics.snapshot()["reasons"] == {"decrypted:personal_withheld": 3}
    assert (
        sum(h.store[str(r.partition)]["state"]["orders"] for r in {r.partition: r for r in records}.values())
        == 3
    )
    assert h.sleeps == []  # a denial is no outage


async def test_a_key_table_outage_is_retried_in_place_until_it_recovers() -> None:
    h = Harness()
    record = h.record(SALES[0])
    h.table.down = True
    seen: list[tuple[int, int]] = []

    def recover_after_three(attempt: int) -> None:
        seen.append((len(h.audit.records), len(h.store)))
        if attempt == 3:
            h.table.down = False

    h.on_sleep = recover_after_three
    verdict = await h.pipeline.process(record)
    assert (verdict.outcome, verdict.reason) == (Outcome.DECRYPTED, "ok")
    assert h.sleeps == [0.2, 0.4, 0.8] and seen == [(0, 0)] * 3  # nothing skipped while it was down
    assert h.metrics.snapshot()["retries"] == 3
    assert h.state(SALES[0]) == plain_state(SALES[0])


async def test_a_tampered_personal_part_is_dead_lettered() -> None:
    h = Harness()
    event = SALES[0]
    part = split("sales", event.model_dump(mode="json")["data"])
    assert part.subject is not None
    sealed = h.owner.seal(Binding.of_event(event, TOPIC), part.subject, part.personal)
    flipped = bytearray(sealed.ciphertext)
    flipped[-1] ^= 0x01
    record = h.record(event, personal=dataclasses.replace(sealed, ciphertext=bytes(flipped)))
    verdict = await h.pipeline.process(record)
    assert (verdict.outcome, verdict.reason) == (Outcome.DEAD_LETTER, "personal_bad_tag")
    assert h.dlq.records == [(record, "personal_bad_tag")]
    assert h.store[str(record.partition)]["state"] == SalesHandler().initial_state()


async def test_a_personal_part_sealed_for_another_record_is_dead_lettered() -> None:
    h = Harness()
    other = next(e for e in SALES if e.data["customer_id"] != SALES[0].data["customer_id"])
    part = split("sales", SALES[0].model_dump(mode="json")["data"])
    assert part.subject is not None
    # SALES[0]'s subject and fields, sealed for another event id, replayed into SALES[0]'s record
    stolen = h.owner.seal(Binding.of_event(other, TOPIC), part.subject, part.personal)
    verdict = await h.feed(SALES[0], personal=stolen)
    assert (verdict.outcome, verdict.reason) == (Outcome.DEAD_LETTER, "personal_bad_tag")


async def test_a_subject_reference_that_is_not_a_pseudonym_is_dead_lettered() -> None:
    h = Harness()
    verdict = await h.feed(SALES[0], personal=SealedPersonal("C-1001", b"\x01" + b"\x00" * 80))
    assert (verdict.outcome, verdict.reason) == (Outcome.DEAD_LETTER, "bad_personal")


@pytest.mark.parametrize(
    ("shred", "reason", "marker"),
    [(True, "subject_shredded", SHREDDED), (False, "personal_withheld", WITHHELD)],
)
async def test_finance_markers_pass_the_payment_contract(shred: bool, reason: str, marker: str) -> None:
    h = Harness("finance", with_subject_keys=shred)
    event = FINANCE[0]
    record = h.record(event)
    if shred:
        forget(h, event)
    seen = h.payloads_seen()
    verdict = await h.pipeline.process(record)
    assert (verdict.outcome, verdict.reason) == (Outcome.DECRYPTED, reason)
    assert (seen[0]["card_number"], seen[0]["iban"]) == (marker, marker)
    assert h.state(event) == plain_state(event)  # the payment and its amount count
    hint = h.pipeline.handler.hint(RecordMetadata.for_event(event, key_arn="k"), seen[0])
    assert hint == {"card": marker, "iban": marker}


async def test_a_miss_loads_the_keys_of_the_records_waiting_behind_it_in_one_table_call() -> None:
    h = Harness()
    h.decryptor.inline = True  # data keys at hand: the look-ahead can open the waiting records' bodies
    events = [
        e.model_copy(update={"data": {**e.data, "customer_id": f"C-{i:08d}"}})
        for i, e in enumerate(generate_events(60, ["sales"], seed=5))
    ]
    next_offset: dict[int, int] = {}
    records = []
    for event in events:  # offsets as the broker gives them, before any is processed
        record = h.record(event)
        offset = next_offset.get(record.partition, 0)
        next_offset[record.partition] = offset + 1
        records.append(dataclasses.replace(record, offset=offset))
    waiting = list(records)
    h.pipeline.lookahead = lambda: waiting[1:]  # what Faust holds behind the record at hand
    h.table.calls.clear()
    outcomes = []
    while waiting:
        outcomes.append(await h.pipeline.process(waiting[0]))
        waiting.pop(0)
    assert [o.reason for o in outcomes] == ["ok"] * 60
    # the first miss loaded all 60 subjects (one batch; the wrapping key once): no call per record
    assert dict(h.table.calls) == {"BatchGetItem": 1, "GetItem": 1}
