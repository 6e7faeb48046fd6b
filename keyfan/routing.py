"""Pure routing: an event's department and entity -> a partition inside that department's range.

The hash is stable across processes and Python versions (crc32, not ``hash()``), so one entity's events
always land in one partition and stay in order.
"""

from __future__ import annotations

import hashlib
import zlib

from keyfan.departments import Department


def partition_for(department: Department, entity_key: str) -> int:
    """The partition for ``entity_key`` within ``department``'s range."""
    slot = zlib.crc32(entity_key.encode("utf-8")) % len(department.partitions)
    return department.partitions[slot]


def record_key(department: Department, entity_key: str) -> bytes:
    """The Kafka record key: a pseudonym of the entity, so that no identifier travels in plaintext."""
    return hashlib.sha256(f"{department.name}:{entity_key}".encode()).hexdigest()[:32].encode("ascii")


def all_partitions(partition_count: int) -> tuple[int, ...]:
    return tuple(range(partition_count))
