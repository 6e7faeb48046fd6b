"""parse_event: every way a message body can be wrong has its own DLQ reason, and none quotes a value."""

from __future__ import annotations

import json

import pytest

from keyfan.departments import DepartmentRegistry
from keyfan.envelope import seal
from keyfan.exceptions import InvalidEvent
from keyfan.generation import generate_events, to_message_body
from keyfan.models import PAYLOAD_MODELS, DepartmentEvent
from keyfan.validation import DLQ_REASONS, MAX_DEPTH, parse_event

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


DEEP_ARRAY = "[" * 50000 + "]" * 50000
DEEP_OBJECT = '{"a":' * 5000 + "1" + "}" * 5000
LONG_INT = '{"n": ' + "9" * 5000 + "}"


@pytest.mark.parametrize(
    "body",
    [
        DEEP_ARRAY,
        DEEP_OBJECT,
        LONG_INT,
        _body(data={"n": 1}).replace('"n": 1', '"n": ' + "9" * 5000),  # a valid event but for its integer
        '"\ud800"',  # a str no JSON text encodes to (a lone surrogate)
    ],
    ids=["deep_array", "deep_object", "long_int", "long_int_in_data", "lone_surrogate"],
)
def test_bodies_the_parser_cannot_take_are_invalid_json_not_a_foreign_error(body):
    # Given: a body json.loads refuses with RecursionError or ValueError, not JSONDecodeError
    # When: it is parsed
    with pytest.raises(InvalidEvent) as caught:
        parse_event(body, REGISTRY, max_bytes=1_000_000)
    # Then: it is an InvalidEvent named by the error's type, never quoting the body
    assert caught.value.reason == "invalid_json"
    assert "9999" not in str(caught.value) and "[[" not in str(caught.value)


def _nested(depth: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def test_nesting_the_parser_takes_but_the_envelope_cannot_seal_is_a_schema_error():
    # Given: an hr event (any object as data) whose data nests 300 deep: json parses it, pydantic's
    # serializer (used by envelope.seal) would not
    deep = _body(department="hr", event_type="hr.record.created", data=_nested(300))
    shallow = _body(department="hr", event_type="hr.record.created", data=_nested(MAX_DEPTH - 1))
    # When / Then: refused before validation; the deepest accepted body still seals
    assert _reason(deep, max_bytes=1_000_000) == "schema"
    assert seal(parse_event(shallow, REGISTRY, max_bytes=1_000_000))
    too_deep = _body(department="hr", event_type="hr.record.created", data=_nested(MAX_DEPTH))
    assert _reason(too_deep, max_bytes=1_000_000) == "schema"


@pytest.mark.parametrize("occurred_at", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_timestamp_that_overflows_in_utc_is_a_schema_error(occurred_at):
    # Given: a timestamp pydantic accepts but the UTC validator overflows on (OverflowError)
    # When / Then: a schema error, not an escaped OverflowError
    assert _reason(_body(occurred_at=occurred_at)) == "schema"


@pytest.mark.parametrize("error", [RecursionError("deep"), OverflowError("big"), ValueError("limit")])
def test_a_foreign_error_inside_pydantic_validation_becomes_invalid_event(monkeypatch, error):
    # Given: pydantic raising instead of reporting (as its recursion guard or a validator can)
    def raising(*args, **kwargs):
        raise error

    monkeypatch.setattr(DepartmentEvent, "model_validate", raising)
    # When / Then: the envelope's validation is a schema error named by the error's type
    with pytest.raises(InvalidEvent) as caught:
        parse_event(_body(), REGISTRY, max_bytes=4096)
    assert caught.value.reason == "schema" and type(error).__name__ in str(caught.value)
    assert str(error) not in str(caught.value)


def test_a_foreign_error_inside_payload_validation_becomes_invalid_payload(monkeypatch):
    # Given: the sales payload model raising RecursionError
    def raising(*args, **kwargs):
        raise RecursionError("deep")

    monkeypatch.setitem(PAYLOAD_MODELS, "sales", type("Raising", (), {"model_validate": raising}))
    # When / Then
    assert _reason(_body()) == "invalid_payload"
