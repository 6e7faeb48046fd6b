"""Events padded to a payload size: the size of the sealed plaintext, the exact bytes that get encrypted.

Padding stays inside each department's contract (the payload models forbid extra fields):

    sales    one extra line item, a gift note: ``sku`` carries the padding, price 0.00, one fixed product
             name (so the sales aggregates do not grow with the padding)
    finance  the free-form ``payment_id`` gets a reference suffix
    other    a ``notes`` field in the generic ``data`` object

A payload already larger than the target is trimmed to one line item where it has several, and is otherwise
left as it is (a sales order does not fit in 256 bytes): ``actual_sizes`` reports what was really sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from keyfan.envelope import seal
from keyfan.generation import generate_events
from keyfan.models import DepartmentEvent
from keyfan.personal_data import subject_of

_FILLER = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt "
NOTE_PRODUCT = "Gift note"


def _filler(length: int) -> str:
    repeats = length // len(_FILLER) + 1
    return (_FILLER * repeats)[:length]


def _with_data(event: DepartmentEvent, data: dict[str, Any]) -> DepartmentEvent:
    return event.model_copy(update={"data": data})


def _padded_data(department: str, data: dict[str, Any], filler: str) -> dict[str, Any]:
    if department == "sales":
        note = {"sku": f"NOTE-{filler}", "product": NOTE_PRODUCT, "quantity": 1, "unit_price": "0.00"}
        return {**data, "line_items": [*data["line_items"], note]}
    if department == "finance":
        return {**data, "payment_id": f"{data['payment_id']}-{filler}"}
    return {**data, "notes": filler}


def sealed_size(event: DepartmentEvent) -> int:
    return len(seal(event))


def pad_event(event: DepartmentEvent, size: int) -> DepartmentEvent:
    """The event with its sealed plaintext padded to ``size`` bytes (or as small as it gets, if larger)."""
    data = dict(event.data)
    if sealed_size(event) > size and len(data.get("line_items", ())) > 1:
        data["line_items"] = data["line_items"][:1]
    base = _with_data(event, data)
    empty = sealed_size(_with_data(event, _padded_data(event.department, data, "")))
    if empty > size:
        return base
    return _with_data(event, _padded_data(event.department, data, _filler(size - empty)))


def sized_events(count: int, departments: Sequence[str], size: int, seed: int) -> list[DepartmentEvent]:
    """``count`` generated events (round-robin over ``departments``), each padded to ``size``."""
    return [pad_event(event, size) for event in generate_events(count, departments, seed)]


def actual_sizes(events: Iterable[DepartmentEvent]) -> dict[str, float]:
    """Mean sealed plaintext bytes per department."""
    totals: dict[str, list[int]] = {}
    for event in events:
        totals.setdefault(event.department, []).append(sealed_size(event))
    return {dept: sum(sizes) / len(sizes) for dept, sizes in sorted(totals.items())}


def distinct_subjects(events: Iterable[DepartmentEvent]) -> int:
    """How many subjects ``events`` are about (per department, as subject keys are): what the field-level
    suite's key-table calls depend on. The generator draws each batch's customers and accounts from a pool
    a quarter of the batch's size (``keyfan.generation``)."""
    return len({(e.department, who) for e in events if (who := subject_of(e.department, e.data)) is not None})
