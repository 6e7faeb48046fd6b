"""Generated events: deterministic for a seed, realistic, and valid against the contract."""

from __future__ import annotations

from pathlib import Path

import pytest

from keyfan.departments import DepartmentRegistry
from keyfan.generation import generate_events, luhn_check_digit, luhn_valid, to_message_body
from keyfan.models import FinancePayment, SalesOrder, entity_key
from keyfan.validation import parse_event

REGISTRY = DepartmentRegistry.from_mapping(
    {
        "department": [
            {"name": "sales", "partitions": [0, 1, 2], "key_alias": "alias/s", "consumer_identity": "s"},
            {"name": "finance", "partitions": [3, 4, 5], "key_alias": "alias/f", "consumer_identity": "f"},
            {"name": "hr", "partitions": [6], "key_alias": "alias/h", "consumer_identity": "h"},
        ]
    }
)


def test_same_seed_same_events_including_ids_and_times():
    first = generate_events(60, ["sales", "finance"], seed=42)
    again = generate_events(60, ["sales", "finance"], seed=42)
    assert [to_message_body(e) for e in first] == [to_message_body(e) for e in again]


def test_other_seed_other_events():
    a = generate_events(10, ["sales", "finance"], seed=1)
    b = generate_events(10, ["sales", "finance"], seed=2)
    assert {e.event_id for e in a}.isdisjoint({e.event_id for e in b})
    assert [e.data for e in a] != [e.data for e in b]


def test_without_seed_events_differ_between_calls():
    assert generate_events(3, ["sales"])[0].event_id != generate_events(3, ["sales"])[0].event_id


def test_departments_are_dealt_round_robin():
    events = generate_events(7, ["sales", "finance", "hr"], seed=3)
    assert [e.department for e in events] == ["sales", "finance", "hr", "sales", "finance", "hr", "sales"]


def test_every_event_passes_validation_and_typed_payloads_parse():
    events = generate_events(90, ["sales", "finance", "hr"], seed=7)
    assert len({e.event_id for e in events}) == 90
    for event in events:
        parsed = parse_event(to_message_body(event), REGISTRY, max_bytes=256 * 1024)
        assert parsed == event
        assert entity_key(event)
    sales = [SalesOrder.model_validate(e.data) for e in events if e.department == "sales"]
    finance = [FinancePayment.model_validate(e.data) for e in events if e.department == "finance"]
    assert all(order.total > 0 and "@" in order.email and order.line_items for order in sales)
    assert all(luhn_valid(payment.card_number) for payment in finance)
    assert all(payment.card_number[:6] in {"400000", "555555", "378282"} for payment in finance)


def test_a_department_without_a_typed_payload_gets_generic_data_with_an_entity_id():
    (event,) = generate_events(1, ["hr"], seed=5)
    assert event.event_type == "hr.record.created"
    assert event.data["entity_id"].startswith("HR-")
    assert entity_key(event) == event.data["entity_id"]


def test_entities_repeat_so_ordering_per_entity_matters():
    events = generate_events(80, ["sales"], seed=9)
    assert len({entity_key(e) for e in events}) < len(events)


def test_emails_are_unique_per_customer():
    events = generate_events(100, ["sales"], seed=11)
    by_customer = {e.data["customer_id"]: e.data["email"] for e in events}
    assert len(set(by_customer.values())) == len(by_customer)


@pytest.mark.parametrize("number", ["4111111111111111", "5555555555554444", "378282246310005"])
def test_luhn_agrees_with_known_test_cards(number):
    assert luhn_valid(number)
    assert luhn_check_digit(number[:-1]) == number[-1]
    assert not luhn_valid(number[:-1] + str((int(number[-1]) + 1) % 10))


def test_bad_arguments():
    with pytest.raises(ValueError):
        generate_events(-1, ["sales"])
    with pytest.raises(ValueError):
        generate_events(1, [])
    assert generate_events(0, [], seed=1) == []


def test_the_repo_registry_departments_all_generate(tmp_path: Path):
    registry = DepartmentRegistry.load(Path(__file__).resolve().parents[2] / "departments.toml")
    events = generate_events(20, list(registry.names), seed=1)
    for event in events:
        parse_event(to_message_body(event), registry, max_bytes=256 * 1024)
