"""parse_event: every way a message body can be wrong has its own DLQ reason, and none quotes a value."""

from __future__ import annotations

import json

import pytest

from keyfan.departments import DepartmentRegistry
from keyfan.exceptions import InvalidEvent
from keyfan.generation import generate_events, to_message_body
from keyfan.validation import DLQ_REASONS, parse_event

REGISTRY = DepartmentRegistry.from_mapping(
    {
        "department": [
            {"name": "sales", "partitions": [0], "key_alias": "alias/s", "consumer_identity": "s"},
            {"name": "finance", "partitions": [1], "key_alias": "alias/f", "consumer_identity": "f"},
            {"name": "hr", "partitions": [2], "key_alias": "alias/h", "consumer_identity": "h"},
        ]
    }
)
SALES, FINANCE = generate_events(2, ["sales", "finance"], seed=1)


def _body(event=SALES, **changes) -> str:
    document = json.loads(to_message_body(event))
    document.update(changes)
    return json.dumps(document, ensure_ascii=False)


def _reason(body: str | bytes, max_bytes: int = 4096) -> str:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(body, REGISTRY, max_bytes=max_bytes)
    assert caught.value.reason in DLQ_REASONS
    return caught.value.reason


def test_a_valid_body_parses_as_str_or_bytes():
    assert parse_event(to_message_body(SALES), REGISTRY, max_bytes=4096) == SALES
    assert parse_event(to_message_body(FINANCE).encode(), REGISTRY, max_bytes=4096) == FINANCE


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{not json", "invalid_json"),
        (b"\xff\xfe", "invalid_json"),
        ("[]", "schema"),
        ("null", "schema"),
        (_body(extra=1), "schema"),
        (_body(schema_version="one"), "schema"),
        (_body(schema_version=0), "schema"),
        (_body(event_id="not-a-uuid"), "schema"),
        (_body(occurred_at="2026-01-01T00:00:00"), "schema"),  # naive timestamps are refused
        (_body(event_type="Has Spaces"), "schema"),
        (_body(department="marketing"), "unknown_department"),
        (_body(data={"order_id": "o-1"}), "invalid_payload"),
        (_body(FINANCE, data={**FINANCE.data, "card_number": "4111-1111"}), "invalid_payload"),
    ],
)
def test_each_kind_of_bad_body_has_its_reason(body, reason):
    assert _reason(body) == reason


def test_size_is_checked_in_bytes_before_parsing():
    body = _body(data={**SALES.data, "customer_name": "é" * 2500})  # 5,000 bytes of name
    assert len(body) < 4096 < len(body.encode())
    assert _reason(body) == "too_large"
    assert _reason("{not json" + " " * 5000) == "too_large"


def test_a_registry_department_without_a_typed_payload_accepts_any_object():
    body = _body(department="hr", event_type="hr.record.created", data={"entity_id": "HR-1", "x": [1]})
    assert parse_event(body, REGISTRY, max_bytes=4096).data == {"entity_id": "HR-1", "x": [1]}


def test_error_messages_never_quote_payload_values():
    secret = FINANCE.data["card_number"]
    body = _body(FINANCE, data={**FINANCE.data, "iban": "not an iban " + secret})
    with pytest.raises(InvalidEvent) as caught:
        parse_event(body, REGISTRY, max_bytes=4096)
    assert secret not in str(caught.value) and "not an iban" not in str(caught.value)
    assert "iban" in str(caught.value)
