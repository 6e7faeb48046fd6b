"""Where the consumer reads from after every assignment and recovery: its own stored positions.

faust-streaming 0.15.3 loses records around rebalances and restarts, in two ways measured here on Tansu:

- During a rebalance or table recovery Faust suspends its flow; records fetched meanwhile are dropped from
  the in-memory batch *and* marked as read. Faust heals this by seeking every assigned partition to its
  committed offset afterwards, but aiokafka's ``seek_to_committed`` only seeks when the committed offset
  is > 0, so a partition with no commit yet lost those records for good.
- After a restart once commits exist, Faust resumes the partitions before it seeks them (cf. faust
  #216/#217), so the agent received records from a stale fetch position first; the records between the
  committed offset and those were never delivered, and the group then committed past them (7 of 10 runs:
  15-213 records skipped).

The fix does not trust Faust's committed offset at all. Faust calls ``seek_to_committed`` at the end of
every assignment, once the state table has been recovered; here it seeks each source partition to the
position kept in the table (``RecordPipeline.expected_offset``: the offset after the last record with a
final outcome, or the log start for a partition never read), and only then lets the agent process
records (``ConsumerRuntime.positions_restored``). Records already handled are at most redelivered, which
the position check absorbs; anything that still arrives out of order is caught by the agent's gap check.

The group's committed offsets follow the same positions (``_new_offset``), not Faust's acks: the agent
acks records it sets aside after a gap too, and lag figures must not claim those were processed.

A seek alone does not heal a gap, measured here: Faust's fetch loop records the offset of every record it
hands over as "read" and drops any later record below it, so the rest of a batch fetched before the seek
moved the read offset back past the sought one, and the records fetched again were dropped (the crash
test saw the same gap survive every seek). ``ReadOffsets`` pins a partition's read offset at the sought
offset until a record from there on is handed over.

Smaller fixes live here too: the fetch wait Faust hard-codes (``QuickFetchConsumerThread``), Faust's
per-record statistics (``QuietMonitor``), and ``current_event_as``, which lets the consumer apply a batch's table writes to the changelog partitions of
the records that made them (``keyfan.consumer.writebehind``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import weakref
from collections import defaultdict
from collections.abc import Iterator, Mapping
from typing import Any

import aiokafka
from faust import streams as faust_streams
from faust.sensors import Monitor
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, EventT

# Faust hard-codes a 1,500 ms fetch wait. aiokafka keeps one fetch in flight per broker, so during catch-up a
# fetch that finds some partitions idle can hold the busy ones back for up to that long (measured here:
# a bare agent drains ~3x faster with 100 ms). 100 ms keeps an idle consumer's fetch rate at 10/s.
FETCH_MAX_WAIT_MS = 100


class QuietMonitor(Monitor):
    """Faust's Monitor without its per-record statistics, which nothing here reads (``/metrics`` is
    Keyfan's own registry). They cost about 150 µs a record here: a bare agent drains 2.8k records/s with
    them and 4.7k without. Offsets, commits and rebalance timings are still tracked."""

    def on_message_in(self, *args: Any, **kwargs: Any) -> None:
        return None

    def on_stream_event_in(self, *args: Any, **kwargs: Any) -> None:
        return None

    def on_stream_event_out(self, *args: Any, **kwargs: Any) -> None:
        return None

    def on_message_out(self, *args: Any, **kwargs: Any) -> None:
        return None

    def on_table_get(self, *args: Any, **kwargs: Any) -> None:
        return None

    def on_table_set(self, *args: Any, **kwargs: Any) -> None:
        return None

    def on_table_del(self, *args: Any, **kwargs: Any) -> None:
        return None

    def on_send_initiated(self, *args: Any, **kwargs: Any) -> None:
        return None

    def on_send_completed(self, *args: Any, **kwargs: Any) -> None:
        return None


def waiting_messages(queue: asyncio.Queue[Any], limit: int) -> list[Any]:
    """The messages of the first ``limit`` events Faust has fetched for an agent and not yet handed over,
    without taking them (the pipeline's look-ahead). Reads the queue's deque: asyncio.Queue has no peek."""
    waiting = getattr(queue, "_queue", None)
    if waiting is None:
        return []
    return [event.message for event in itertools.islice(waiting, limit)]  # no await: nothing changes it


@contextlib.contextmanager
def current_event_as(event: EventT | None) -> Iterator[None]:
    """Make ``event`` Faust's current event for the block: a table write inside goes to its changelog
    partition (Faust reads the partition from the current event). Used to apply deferred writes."""
    token = faust_streams._current_event.set(weakref.ref(event) if event is not None else None)
    try:
        yield
    finally:
        faust_streams._current_event.reset(token)


class ReadOffsets(defaultdict[TP, int | None]):
    """Faust's per-partition "last offset handed over", whose updates cannot undo a seek."""

    def __init__(self) -> None:
        super().__init__(lambda: None)
        self._pins: dict[TP, int] = {}

    def pin(self, tp: TP, offset: int) -> None:
        """Read from ``offset`` on: ignore higher offsets of records fetched before the seek."""
        self._pins[tp] = offset
        super().__setitem__(tp, offset)

    def __setitem__(self, tp: TP, offset: int | None) -> None:
        pinned = self._pins.get(tp)
        if pinned is not None:
            if offset is None or offset > pinned:
                return  # a record fetched before the seek
            del self._pins[tp]  # the sought records are flowing
        super().__setitem__(tp, offset)

    def unpin_all(self) -> None:
        self._pins.clear()


class QuickFetchConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread with the fetch wait set to ``FETCH_MAX_WAIT_MS``."""

    def _create_worker_consumer(self, transport: faust_aiokafka.Transport) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read when the consumer starts its fetcher
        return consumer


class ReseekingConsumer(faust_aiokafka.Consumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_offset = ReadOffsets()

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return QuickFetchConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def reseek(self, tp: TP, offset: int) -> None:
        """Fetch ``tp`` again from ``offset`` (the agent found records missing before it)."""
        await self.seek_wait({tp: offset})
        self._pinned().pin(tp, offset)

    def _pinned(self) -> ReadOffsets:
        offsets = self._read_offset
        assert isinstance(offsets, ReadOffsets)
        return offsets

    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed = dict(await super().seek_to_committed())
        runtime: Any = getattr(self.app, "runtime", None)
        if runtime is None:
            return committed
        source = [
            tp for tp in committed if tp.topic == runtime.settings.topic and runtime.tracks(tp.partition)
        ]
        if source:
            earliest = await self.earliest_offsets(*source)
            pipeline = runtime.pipeline
            for tp in source:
                pipeline.log_start[tp.partition] = earliest.get(tp) or 0
            positions = {tp: pipeline.expected_offset(tp.partition) for tp in source}
            await self.seek_wait(positions)
            reads = self._pinned()
            reads.unpin_all()
            for tp, offset in positions.items():
                reads.pin(tp, offset)
            committed.update(positions)
        if not self.app.in_recovery:  # Faust also calls this mid-rebalance; the table is final only after
            runtime.positions_restored()
        return committed

    def _new_offset(self, tp: TP) -> int | None:
        acked = super()._new_offset(tp)  # keeps Faust's own bookkeeping of acked offsets tidy
        runtime: Any = getattr(self.app, "runtime", None)
        if runtime is None or tp.topic != runtime.settings.topic or not runtime.tracks(tp.partition):
            return acked
        return runtime.committable_offset(tp.partition)


class ReseekingTransport(faust_aiokafka.Transport):
    Consumer = ReseekingConsumer
