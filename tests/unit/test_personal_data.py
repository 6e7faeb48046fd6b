"""The personal-data tags of the event contract, and the split and merge crypto-shredding will seal with."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from keyfan.consumer.handler import parse_payload
from keyfan.exceptions import InvalidEvent
from keyfan.generation import generate_events
from keyfan.masking import mask_card, mask_email, mask_iban, mask_name, mask_phone
from keyfan.models import FinancePayment, SalesOrder
from keyfan.personal_data import (
    SHREDDED,
    WITHHELD,
    is_marker,
    merge,
    personal_fields,
    readable_model,
    split,
    subject_of,
)


def test_the_tagged_fields_are_the_personal_ones_of_each_model() -> None:
    assert personal_fields("sales") == {"customer_name", "email", "phone", "address"}
    assert personal_fields("finance") == {"card_number", "iban"}
    assert personal_fields("hr") == frozenset()  # a registry-only department: nothing tagged


@pytest.mark.parametrize("department", ["sales", "finance"])
def test_a_split_separates_exactly_the_tagged_fields_and_merges_back(department: str) -> None:
    for event in generate_events(100, [department], seed=12):
        parts = split(department, event.data)
        assert set(parts.personal) == personal_fields(department)
        assert not set(parts.rest) & personal_fields(department)
        assert parts.subject is not None and parts.subject == subject_of(department, event.data)
        assert parts.rest[{"sales": "customer_id", "finance": "account_id"}[department]] == parts.subject
        assert merge(department, parts.rest, parts.personal) == event.data


def test_a_forgotten_subject_reads_as_shredded_and_the_rest_is_untouched() -> None:
    (event,) = generate_events(1, ["sales"], seed=3)
    parts = split("sales", event.data)
    shredded = merge("sales", parts.rest, None)
    assert {k: shredded[k] for k in personal_fields("sales")} == dict.fromkeys(
        personal_fields("sales"), SHREDDED
    )
    assert {k: v for k, v in shredded.items() if k not in personal_fields("sales")} == parts.rest
    assert shredded["line_items"] == event.data["line_items"]  # aggregates over non-personal fields go on


def test_an_untyped_department_keeps_its_whole_payload_under_the_department_key() -> None:
    data = {"entity_id": "e-1", "name": "Ada", "salary": 1}
    parts = split("hr", data)
    assert (parts.subject, parts.personal, parts.rest) == (None, {}, data)
    assert merge("hr", parts.rest, None) == data  # nothing tagged: nothing to shred


@pytest.mark.parametrize("marker", [SHREDDED, WITHHELD])
@pytest.mark.parametrize(("department", "model"), [("sales", SalesOrder), ("finance", FinancePayment)])
def test_personal_fields_may_arrive_as_markers(department: str, model: type[BaseModel], marker: str) -> None:
    (event,) = generate_events(1, [department], seed=5)
    data = merge(department, split(department, event.data).rest, None, marker)
    assert readable_model(model, event.data) is model  # nothing unreadable: the model as it is
    parsed = parse_payload(model, data, department)
    assert {name: getattr(parsed, name) for name in personal_fields(department)} == dict.fromkeys(
        personal_fields(department), marker
    )
    # every other field is checked as before (finance: the card number's pattern is waived, not the rest)
    with pytest.raises(InvalidEvent):
        parse_payload(model, {**data, "currency": "euros"}, department)


@pytest.mark.parametrize("field", ["currency", "line_items", "order_id"])
def test_a_marker_in_a_field_that_is_not_personal_fails_the_contract(field: str) -> None:
    (event,) = generate_events(1, ["sales"], seed=6)
    data = {**event.data, field: SHREDDED}
    if field != "order_id":
        with pytest.raises(InvalidEvent):
            parse_payload(SalesOrder, data, "sales order")
    # a str field takes any string, a marker too, but it is not read as one: the model stays the contract's
    assert readable_model(SalesOrder, data) is SalesOrder


def test_only_some_personal_fields_may_be_unreadable() -> None:
    (event,) = generate_events(1, ["finance"], seed=7)
    data = {**event.data, "iban": WITHHELD}
    assert parse_payload(FinancePayment, data, "payment").card_number == event.data["card_number"]
    with pytest.raises(InvalidEvent):  # the card number is its own value, so its pattern still holds
        parse_payload(FinancePayment, {**data, "card_number": "not a card"}, "payment")
    assert not is_marker("[SHREDDED]") and not is_marker(None) and is_marker(SHREDDED)


@pytest.mark.parametrize("marker", [SHREDDED, WITHHELD])
def test_masks_pass_markers_through(marker: str) -> None:
    for mask in (mask_card, mask_iban, mask_email, mask_phone, mask_name):
        assert mask(marker) == marker
    assert mask_card("4111111111111111") == "****-****-****-1111"  # and still mask real values
