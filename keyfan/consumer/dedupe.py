"""Deduplication by event id, over a bounded window, kept in the consumer's state table.

Offsets dedupe redeliveries (``keyfan.consumer.position``); this catches the *same event at a new
offset*: the owner is at-least-once from SQS and may publish an event twice, and a record can be replayed.
The consumer first checks that a record sits in the partition its entity routes to (anything else is
dead-lettered as ``misrouted``), so every copy of an event lands in one partition and a per-partition
window is complete.

Each applied event id is one table entry, ``event:<id> -> [partition, offset]``, written just before the
partition's slot. Faust writes a table change to the changelog partition of the record being processed,
so both land in the same changelog partition, in order: if the slot (the applied state) survived a crash,
so did the entry. The reverse case (entry kept, slot lost) is told apart by the coordinates: the
redelivered record finds its own partition and offset, and is applied.

The window holds the last ``capacity(partition)`` event ids of each partition; older entries are deleted
(one changelog tombstone each). Its order is rebuilt from the table after every rebalance.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, MutableMapping
from typing import Any

EVENT_PREFIX = "event:"


class EventWindow:
    def __init__(self, store: MutableMapping[str, Any], capacity: Callable[[int], int]) -> None:
        self._store = store
        self._capacity = capacity
        self._order: dict[int, deque[tuple[int, str]]] | None = None

    def first_seen(self, event_id: str) -> tuple[int, int] | None:
        """Where this event was applied (partition, offset), if it is in the window."""
        entry = self._store.get(EVENT_PREFIX + event_id)
        return (int(entry[0]), int(entry[1])) if entry else None

    def remember(self, event_id: str, partition: int, offset: int) -> None:
        order = self._ordered().setdefault(partition, deque())
        self._store[EVENT_PREFIX + event_id] = [partition, offset]
        order.append((offset, event_id))
        while len(order) > self._capacity(partition):
            _, oldest = order.popleft()
            self._store.pop(EVENT_PREFIX + oldest, None)

    def invalidate(self) -> None:
        """The table changed under us (rebalance, recovery): rebuild the eviction order on next use."""
        self._order = None

    def size(self) -> int:
        return sum(len(order) for order in self._ordered().values())

    def _ordered(self) -> dict[int, deque[tuple[int, str]]]:
        if self._order is None:
            found: dict[int, list[tuple[int, str]]] = {}
            for key, entry in list(self._store.items()):
                if isinstance(key, str) and key.startswith(EVENT_PREFIX) and entry:
                    found.setdefault(int(entry[0]), []).append((int(entry[1]), key[len(EVENT_PREFIX) :]))
            self._order = {p: deque(sorted(entries)) for p, entries in found.items()}
        return self._order


def capacity_per_partition(window_events: int, partitions: int) -> int:
    """A department's window split evenly over its partitions (at least one id each)."""
    return max(1, -(-window_events // max(1, partitions)))
