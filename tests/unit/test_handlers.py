"""Domain handlers: aggregation, foreign events, invalid payloads, merge across partitions."""

from __future__ import annotations

import pytest

from finance_consumer import FinanceHandler
from keyfan.envelope import RecordMetadata
from keyfan.exceptions import InvalidEvent
from keyfan.generation import generate_events
from keyfan.models import DepartmentEvent
from sales_consumer import SalesHandler
from tests.factories import fake_key_arn, ground_truth, same_money

EVENTS = generate_events(60, ["sales", "finance"], seed=7)


def _meta(event: DepartmentEvent) -> RecordMetadata:
    return RecordMetadata.for_event(event, key_arn=fake_key_arn(event.department))


@pytest.mark.parametrize("handler", [SalesHandler(), FinanceHandler()])
def test_aggregates_equal_ground_truth_across_partitions(handler) -> None:  # type: ignore[no-untyped-def]
    # given the events spread over three partition states
    states = [handler.initial_state() for _ in range(3)]
    for index, event in enumerate(EVENTS):
        if event.department != handler.department:
            continue
        states[index % 3] = handler.apply(states[index % 3], _meta(event), event.data)
    # then merged aggregates equal the ground truth
    merged = handler.merge(states)
    truth = ground_truth(EVENTS)[handler.department]
    assert same_money({k: merged[k] for k in truth}, truth)
    assert merged["foreign_events"] == {}


def test_apply_does_not_mutate_the_old_state() -> None:
    handler = SalesHandler()
    before = handler.initial_state()
    sales = next(e for e in EVENTS if e.department == "sales")
    after = handler.apply(before, _meta(sales), sales.data)
    assert before == handler.initial_state()
    assert after["orders"] == 1


def test_foreign_department_is_counted_not_aggregated() -> None:
    handler = SalesHandler()
    finance = next(e for e in EVENTS if e.department == "finance")
    state = handler.apply(handler.initial_state(), _meta(finance), finance.data)
    assert state["orders"] == 0
    assert state["foreign_events"] == {"finance": 1}


@pytest.mark.parametrize("handler", [SalesHandler(), FinanceHandler()])
def test_invalid_payload_names_fields_not_values(handler) -> None:  # type: ignore[no-untyped-def]
    event = next(e for e in EVENTS if e.department == handler.department)
    bad = {**event.data, "currency": "not-a-currency-SECRET"}
    with pytest.raises(InvalidEvent) as info:
        handler.apply(handler.initial_state(), _meta(event), bad)
    assert info.value.reason == "invalid_payload"
    assert "SECRET" not in str(info.value)


def test_hints_are_masked() -> None:
    finance = next(e for e in EVENTS if e.department == "finance")
    hint = FinanceHandler().hint(_meta(finance), finance.data)
    assert finance.data["card_number"] not in str(hint)
    assert hint["card"].endswith(finance.data["card_number"][-4:])
    sales = next(e for e in EVENTS if e.department == "sales")
    hint = SalesHandler().hint(_meta(sales), sales.data)
    assert sales.data["email"] not in str(hint)
