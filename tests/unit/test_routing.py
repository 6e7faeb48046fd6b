"""Routing is pure, stable, and stays inside the department's range."""

from __future__ import annotations

from pathlib import Path

import pytest

from keyfan.departments import Department, DepartmentRegistry
from keyfan.exceptions import InvalidEvent
from keyfan.routing import check_entity_routing, check_partition_owner, partition_for, record_key

REGISTRY = DepartmentRegistry.load(Path(__file__).resolve().parents[2] / "departments.toml")

FINANCE = Department(
    name="finance", partitions=(3, 4, 5), key_alias="alias/keyfan-finance", consumer_identity="r"
)


def test_partition_is_inside_the_department_range_and_stable() -> None:
    partitions = {partition_for(FINANCE, f"acct-{i}") for i in range(200)}

    assert partitions == {3, 4, 5}
    assert partition_for(FINANCE, "acct-7") == partition_for(FINANCE, "acct-7")
    # crc32 is stable across processes and Python versions (unlike hash()): pin one value.
    # crc32(b"acct-7") == 1308890944, and 1308890944 % 3 == 1, the second slot of (3, 4, 5).
    assert partition_for(FINANCE, "acct-7") == 4


def test_record_key_is_a_pseudonym() -> None:
    key = record_key(FINANCE, "acct-7")

    assert b"acct-7" not in key
    assert key == record_key(FINANCE, "acct-7")
    assert len(key) == 32


def test_a_record_in_another_departments_partition_is_misrouted() -> None:
    registry = REGISTRY
    check_partition_owner(registry, "sales", registry.get("sales").partitions[0])
    for department, partition in (("sales", registry.get("finance").partitions[0]), ("sales", 99)):
        with pytest.raises(InvalidEvent) as misrouted:
            check_partition_owner(registry, department, partition)
        assert misrouted.value.reason == "misrouted"


def test_a_record_not_where_its_entity_routes_is_misrouted() -> None:
    sales = REGISTRY.get("sales")
    home = partition_for(sales, "customer-42")
    check_entity_routing(sales, "customer-42", home)
    check_entity_routing(sales, None, home)  # nothing to check: the payload's contract decides
    with pytest.raises(InvalidEvent) as misrouted:
        check_entity_routing(sales, "customer-42", next(p for p in sales.partitions if p != home))
    assert misrouted.value.reason == "misrouted"
