"""The cost of the consumer's deduplication window, measured on the real ``keyfan.consumer.dedupe.EventWindow``.

Pure CPU, no broker: a department's window is filled to capacity (``dedupe_window_events`` split over its
partitions, as ``RecordPipeline`` splits it) in a plain dict store, then steady-state records are timed,
each one ``first_seen`` (a miss, as for every new event) then ``remember``, which evicts the oldest id of its
partition. Measured as well: the memory a full window holds (tracemalloc), the changelog bytes each applied
record adds in the real service (its entry, and the tombstone of the id it evicts, serialised by Faust's json
codec, the table's default), and the time to rebuild the eviction order after a rebalance.

What a dict store leaves out: a Faust Table also produces each write to its changelog topic (the bytes are
given, not the time), and after a rebalance the rebuild reads the table (a RocksDB store reads slower).
"""

from __future__ import annotations

import gc
import random
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from itertools import cycle, islice
from typing import Any

from faust.serializers import codecs

from keyfan.consumer.dedupe import EventWindow, capacity_per_partition
from keyfan_tools.bench.samples import DedupeCost
from keyfan_tools.bench.stats import median

TABLE_SERIALIZER = "json"  # keyfan.consumer.app: the state table keeps Faust's default key/value serializer
CHANGELOG_SAMPLE = 1000  # entries serialised to measure the changelog bytes
_Filled = tuple[EventWindow, dict[str, Any], int]


def serialized_bytes(obj: object) -> int:
    """Size of ``obj`` as the state table writes it to its changelog (Faust's json codec)."""
    return len(codecs.dumps(TABLE_SERIALIZER, obj))


def _uuid4_text(bits: int) -> str:
    """``str(uuid.UUID(int=bits, version=4))`` without the UUID object (a third of the fill's time)."""
    bits = (bits & ~(0xF000 << 64) | 0x4000 << 64) & ~(0xC000 << 48) | 0x8000 << 48
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class _Feed:
    """Events for one department: fresh event ids (uuid4 text, seeded), round robin over its partitions,
    offsets rising per partition."""

    def __init__(self, partitions: Sequence[int], seed: int = 0) -> None:
        self._random = random.Random(seed)
        self._partitions = cycle(partitions)
        self._next = dict.fromkeys(partitions, 0)

    def __iter__(self) -> Iterator[tuple[str, int, int]]:
        return self

    def __next__(self) -> tuple[str, int, int]:
        partition = next(self._partitions)
        offset = self._next[partition]
        self._next[partition] = offset + 1
        return _uuid4_text(self._random.getrandbits(128)), partition, offset

    def take(self, count: int) -> list[tuple[str, int, int]]:
        return list(islice(self, count))


def _fill(partitions: Sequence[int], window_events: int, feed: _Feed) -> _Filled:
    """A window in a plain dict store, filled to capacity from ``feed``; the window, its store, the ids held."""
    capacity = capacity_per_partition(window_events, len(partitions))
    store: dict[str, Any] = {}
    window = EventWindow(store, lambda _partition: capacity)
    held = capacity * len(partitions)
    for event_id, partition, offset in islice(feed, held):
        window.remember(event_id, partition, offset)
    return window, store, held


def _traced(fill: Callable[[], _Filled]) -> tuple[_Filled, int]:
    """What ``fill`` returns and the bytes still allocated once it has (tracemalloc; the ids included: only the
    window keeps them)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        filled = fill()
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    return filled, max(0, held)


def measure_dedupe(
    partitions: Sequence[int], *, window_events: int = 100_000, steady_records: int = 20_000, runs: int = 5
) -> DedupeCost:
    """The window's cost for one department with ``partitions``, full, at steady state (every record evicts)."""
    if not partitions or runs < 1 or steady_records < 1:
        raise ValueError("need at least one partition, one run and one steady-state record")
    capacity = capacity_per_partition(window_events, len(partitions))
    feed = _Feed(partitions)
    # Filled once, under tracemalloc: store entries (key text, [partition, offset]) and the eviction order
    # (deques of (offset, event id)). Timing runs after tracemalloc has stopped.
    (window, store, held), memory = _traced(lambda: _fill(partitions, window_events, feed))
    remembered = held
    record_us_runs = []
    for _ in range(runs):
        batch = feed.take(steady_records)  # ids made before the clock starts
        gc.collect()
        started = time.perf_counter_ns()
        for event_id, partition, offset in batch:
            if window.first_seen(event_id) is None:  # a new event, as nearly every record is
                window.remember(event_id, partition, offset)
        record_us_runs.append((time.perf_counter_ns() - started) / 1e3 / steady_records)
        remembered += steady_records

    rebuild_ms_runs = []
    for event_id, partition, offset in feed.take(runs):
        window.invalidate()  # as RecordPipeline.resume does after a rebalance
        started = time.perf_counter_ns()
        window.remember(event_id, partition, offset)  # the next call rebuilds the order from the store
        rebuild_ms_runs.append((time.perf_counter_ns() - started) / 1e6)
        remembered += 1

    size = window.size()
    # Each applied record writes its entry (key + value); at steady state it also evicts one id: a tombstone
    # (the key, null value). Means over a spread sample of the full window (keys are one length, offsets vary).
    sample = list(islice(store.items(), 0, None, max(1, len(store) // CHANGELOG_SAMPLE)))
    key_bytes = sum(serialized_bytes(key) for key, _ in sample) / len(sample)
    value_bytes = sum(serialized_bytes(value) for _, value in sample) / len(sample)
    return DedupeCost(
        window_events=window_events,
        partitions=len(partitions),
        capacity_per_partition=capacity,
        window_ids=size,
        steady_records=steady_records,
        runs=runs,
        evicted=remembered - size,
        record_us=median(record_us_runs),
        record_us_runs=record_us_runs,
        memory_bytes=memory,
        memory_mb=memory / 1024 / 1024,
        memory_bytes_per_id=memory / max(1, held),
        changelog_entry_bytes=key_bytes + value_bytes,
        changelog_tombstone_bytes=key_bytes,
        changelog_bytes_per_record=2 * key_bytes + value_bytes,
        rebuild_ms=median(rebuild_ms_runs),
        rebuild_ms_runs=rebuild_ms_runs,
    )
