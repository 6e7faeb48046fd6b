"""Payloads padded to size stay inside each department's contract."""

from __future__ import annotations

from pathlib import Path

import pytest

from keyfan.departments import DepartmentRegistry
from keyfan.validation import parse_event
from keyfan_tools.bench.payloads import NOTE_PRODUCT, actual_sizes, sealed_size, sized_events

REGISTRY = DepartmentRegistry.load(Path(__file__).resolve().parents[2] / "departments.toml")


@pytest.mark.parametrize("size", [1024, 16384])
def test_padded_events_have_exactly_the_size_and_stay_valid(size):
    events = sized_events(20, ["sales", "finance"], size, seed=3)
    for event in events:
        assert sealed_size(event) == size
        parse_event(event.model_dump_json(), REGISTRY, max_bytes=256 * 1024)
    sales = [e for e in events if e.department == "sales"]
    assert all(e.data["line_items"][-1]["product"] == NOTE_PRODUCT for e in sales)


def test_too_large_payloads_are_trimmed_not_broken():
    events = sized_events(20, ["sales", "finance"], 256, seed=3)
    sizes = actual_sizes(events)
    assert sizes["finance"] == 256
    assert sizes["sales"] > 256  # an order does not fit: reported, not faked
    for event in events:
        parse_event(event.model_dump_json(), REGISTRY, max_bytes=256 * 1024)
        if event.department == "sales":
            assert len(event.data["line_items"]) <= 2
