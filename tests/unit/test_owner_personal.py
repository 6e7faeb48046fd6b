"""The owner pipeline with subject keys (crypto-shredding): personal fields leave only sealed under the
subject's key, a reader gets the payload back exactly, and the key table's denials and outages are handled
like KMS's."""

from __future__ import annotations

import json
from typing import Any

import pytest

from keyfan.crypto.subjectkeys import Access
from keyfan.envelope import RecordMetadata, open_body, seal
from keyfan.generation import generate_events, to_message_body
from keyfan.models import DepartmentEvent
from keyfan.owner import MessageOutcome, accounted
from keyfan.personal_data import personal_fields
from keyfan.sqs import QueueMessage
from tests.factories import OWNER_KEY_IDS, FakeDynamoDB, FakeKms, fake_subject_keys
from tests.unit.test_owner_pipeline import TOPIC, FakeQueue, Record, _message, _pipeline

EVENTS = generate_events(10, ["sales", "finance"], seed=41)
SALES = [e for e in EVENTS if e.department == "sales"]
FINANCE = [e for e in EVENTS if e.department == "finance"]


class World:
    def __init__(self, queue: FakeQueue | None = None) -> None:
        self.table = FakeDynamoDB()
        self.kms = FakeKms()
        self.pipeline, self.queue, self.publisher = _pipeline(queue=queue)
        self.pipeline.subject_keys = fake_subject_keys(
            dynamodb=self.table, kms=self.kms, key_ids=OWNER_KEY_IDS
        )

    async def publish(self, event: DepartmentEvent, n: int = 0) -> MessageOutcome:
        return await self.pipeline.handle(_message(to_message_body(event), n))


def plaintext_of(record: Record) -> bytes:
    """What the fake encryptor got (it writes ``ENC`` and the plaintext reversed)."""
    assert record.value.startswith(b"ENC")
    return record.value[3:][::-1]


def values(data: dict[str, Any], department: str) -> list[str]:
    """The personal values of a payload, as strings long enough not to turn up by chance."""
    found: list[str] = []
    for name in personal_fields(department):
        value = data[name]
        found += [str(v) for v in value.values()] if isinstance(value, dict) else [str(value)]
    return [v for v in found if len(v) >= 5]


def the_payload(event: DepartmentEvent) -> dict[str, Any]:
    return json.loads(event.model_dump_json())["data"]


@pytest.mark.parametrize("department", ["sales", "finance"])
async def test_personal_fields_leave_only_sealed_and_a_reader_gets_the_payload_back(department: str) -> None:
    w = World()
    event = (SALES if department == "sales" else FINANCE)[0]
    assert await w.publish(event) is MessageOutcome.PUBLISHED
    (record,) = w.publisher.records
    plaintext = plaintext_of(record)
    body = json.loads(plaintext)
    assert set(body) == {"event_id", "data", "personal"}
    assert not set(body["data"]) & personal_fields(department)
    for name in ("customer_name", "email", "phone", "address", "card_number", "iban"):
        assert name not in body["data"]
    for value in values(event.data, department):
        assert value.encode() not in plaintext and value.encode() not in record.value
    # a reader of the same table opens it back to the original payload, exactly
    metadata = RecordMetadata.from_headers(record.headers)
    opened = open_body(plaintext, metadata)
    assert opened.personal is not None
    reader = fake_subject_keys(dynamodb=w.table, kms=w.kms)
    personal = reader.open(metadata.binding(TOPIC), opened.personal)
    assert personal.access is Access.OPEN
    assert personal.merged(department, opened.data) == the_payload(event)
    assert w.queue.deleted == ["m0"]


async def test_without_subject_keys_the_body_is_as_before() -> None:
    pipeline, _, publisher = _pipeline()
    assert pipeline.subject_keys is None
    assert await pipeline.handle(_message(to_message_body(SALES[0]))) is MessageOutcome.PUBLISHED
    (record,) = publisher.records
    assert plaintext_of(record) == seal(SALES[0])
    assert "personal" not in json.loads(plaintext_of(record))


async def test_a_known_subject_is_sealed_without_the_table() -> None:
    w = World()
    event = SALES[0]
    again = event.model_copy(update={"event_id": SALES[1].event_id})
    await w.publish(event, 0)
    calls = dict(w.table.calls)
    assert await w.publish(again, 1) is MessageOutcome.PUBLISHED
    assert dict(w.table.calls) == calls and w.kms.calls == {"GenerateDataKey": 1}
    first, second = (json.loads(plaintext_of(r))["personal"] for r in w.publisher.records)
    assert first["subject"] == second["subject"] and first["sealed"] != second["sealed"]


@pytest.mark.parametrize("service", ["table", "kms"])
async def test_a_denied_key_table_releases_the_message(service: str) -> None:
    w = World()
    (w.table if service == "table" else w.kms).denied = True
    assert await w.publish(SALES[0]) is MessageOutcome.RELEASED
    assert w.publisher.records == [] and w.queue.dead == [] and w.queue.deleted == []
    released = w.pipeline.metrics.registry.get_sample_value(
        "keyfan_owner_released_total", {"cause": "access_denied"}
    )
    assert released == 1 and accounted(w.pipeline.metrics.snapshot())


async def test_a_key_table_outage_is_retried_until_it_recovers() -> None:
    class Recovering(FakeQueue):
        """Extending the message's visibility is what the owner does before each wait: the table is back."""

        table: FakeDynamoDB | None = None

        def change_visibility(self, message: QueueMessage, seconds: int) -> None:
            super().change_visibility(message, seconds)
            if self.table is not None and len(self.visibility) == 2:
                self.table.down = False

    queue = Recovering()
    w = World(queue=queue)
    queue.table = w.table
    w.table.down = True
    assert await w.publish(SALES[0]) is MessageOutcome.PUBLISHED
    assert [mid for mid, _ in queue.visibility] == ["m0", "m0"] and queue.dead == []
    assert len(w.publisher.records) == 1 and queue.deleted == ["m0"]
    assert w.table.calls["GetItem"] > 2  # asked again after each failure
