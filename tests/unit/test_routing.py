"""Routing is pure, stable, and stays inside the department's range."""

from __future__ import annotations

from keyfan.departments import Department
from keyfan.routing import partition_for, record_key

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
