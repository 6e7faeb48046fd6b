"""The personal-data tags of the event contract, and the split and merge crypto-shredding will seal with."""

from __future__ import annotations

import pytest

from keyfan.generation import generate_events
from keyfan.personal_data import SHREDDED, merge, personal_fields, split, subject_of


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
