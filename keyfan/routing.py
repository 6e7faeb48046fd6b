"""Pure routing: an event's department and entity -> a partition inside that department's range.

The hash is stable across processes and Python versions (crc32, not ``hash()``), so one entity's events
always land in one partition and stay in order.
"""

from __future__ import annotations

import hashlib
import zlib

from keyfan.departments import Department, DepartmentRegistry
from keyfan.exceptions import InvalidEvent

MISROUTED = "misrouted"


def partition_for(department: Department, entity_key: str) -> int:
    """The partition for ``entity_key`` within ``department``'s range."""
    slot = zlib.crc32(entity_key.encode("utf-8")) % len(department.partitions)
    return department.partitions[slot]


def record_key(department: Department, entity_key: str) -> bytes:
    """The Kafka record key: a pseudonym of the entity, so that no identifier travels in plaintext."""
    return hashlib.sha256(f"{department.name}:{entity_key}".encode()).hexdigest()[:32].encode("ascii")


def all_partitions(partition_count: int) -> tuple[int, ...]:
    return tuple(range(partition_count))


def check_partition_owner(registry: DepartmentRegistry, department: str, partition: int) -> None:
    """A record must sit in one of its department's partitions (``InvalidEvent("misrouted")`` if not)."""
    owner = registry.owner_of(partition)
    if owner is None or owner.name != department:
        raise InvalidEvent(
            MISROUTED,
            f"a {department!r} record in partition {partition}, which belongs to "
            f"{owner.name if owner else 'no department'!r}",
        )


def check_entity_routing(department: Department, entity_key: str | None, partition: int) -> None:
    """A record must sit in the partition its entity routes to, so every copy of an event is in one
    partition (which keeps a consumer's per-partition dedupe complete). ``None``: no entity to check (a
    payload without its entity field fails its contract elsewhere)."""
    if entity_key is not None and partition_for(department, entity_key) != partition:
        raise InvalidEvent(MISROUTED, f"the record's entity routes to another partition than {partition}")
