"""Wire format v1 as the owner writes it: headers round-trip, context is low-cardinality, the id is sealed."""

from __future__ import annotations

import json

import pytest

from keyfan.envelope import (
    CONTEXT_KEYS,
    H_EVENT_ID,
    H_VERSION,
    Body,
    RecordMetadata,
    SealedPersonal,
    check_context,
    encryption_context,
    open_body,
    seal,
)
from keyfan.exceptions import CorruptMessage, TamperedMessage
from keyfan.generation import generate_events

EVENTS = generate_events(4, ["sales", "finance"], seed=3)
KEY = "arn:aws:kms:us-east-1:123456789012:key/abc"


def test_headers_round_trip_and_carry_no_payload_value():
    for event in EVENTS:
        metadata = RecordMetadata.for_event(event, key_arn=KEY, produced_at=1.5)
        headers = metadata.to_headers()
        assert RecordMetadata.from_headers(headers) == metadata
        raw = b"".join(value for _, value in headers)
        for value in event.data.values():
            if isinstance(value, str) and len(value) > 4:
                assert value.encode() not in raw


def test_context_is_the_same_for_every_event_of_a_department_and_type():
    contexts = {
        json.dumps(encryption_context(e.department, e.event_type, e.schema_version, "t"), sort_keys=True)
        for e in EVENTS
    }
    assert len(contexts) == 2  # one per department: the data-key cache is keyed by it
    assert set(encryption_context("sales", "x", 1, "t")) == set(CONTEXT_KEYS)
    assert all(str(e.event_id) not in c for e in EVENTS for c in contexts)


def test_seal_binds_the_event_id_and_open_checks_it():
    sales, finance = EVENTS[0], EVENTS[1]
    sealed = seal(sales)
    assert (
        open_body(sealed, RecordMetadata.for_event(sales, key_arn=KEY)).data
        == json.loads(sales.model_dump_json())["data"]
    )
    assert open_body(sealed, RecordMetadata.for_event(sales, key_arn=KEY)).personal is None
    with pytest.raises(TamperedMessage):
        open_body(sealed, RecordMetadata.for_event(finance, key_arn=KEY))
    with pytest.raises(CorruptMessage):
        open_body(b"not json", RecordMetadata.for_event(sales, key_arn=KEY))


def test_check_context_refuses_a_context_that_disagrees_with_the_headers():
    sales = EVENTS[0]
    metadata = RecordMetadata.for_event(sales, key_arn=KEY)
    check_context(metadata, "t", metadata.encryption_context("t"))
    with pytest.raises(TamperedMessage):
        check_context(metadata, "t", {**metadata.encryption_context("t"), "department": "finance"})


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [(H_VERSION, b"2")],
        [(H_VERSION, b"1"), (H_EVENT_ID, b"x")],
        [(H_VERSION, b"\xff")],
    ],
)
def test_bad_headers_are_corrupt(headers):
    with pytest.raises(CorruptMessage):
        RecordMetadata.from_headers(headers)


def test_personal_fields_travel_sealed_apart_inside_the_body():
    sales = EVENTS[0]
    metadata = RecordMetadata.for_event(sales, key_arn=KEY)
    personal = SealedPersonal("ab" * 32, b"\x01sealed-bytes")
    body = open_body(seal(sales, data={"region": "eu"}, personal=personal), metadata)
    assert body == Body({"region": "eu"}, personal)


@pytest.mark.parametrize(
    "personal",
    [
        "not an object",
        {"subject": "ab" * 32},
        {"subject": "ab" * 32, "sealed": "***not base64***"},
        {"subject": "ab" * 32, "sealed": 7},
    ],
)
def test_a_malformed_personal_part_is_corrupt(personal: object):
    sales = EVENTS[0]
    body = json.dumps({"event_id": str(sales.event_id), "data": {}, "personal": personal}).encode()
    with pytest.raises(CorruptMessage) as caught:
        open_body(body, RecordMetadata.for_event(sales, key_arn=KEY))
    assert caught.value.reason in {"bad_personal", "bad_plaintext"}
