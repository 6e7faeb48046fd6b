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
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP


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


class ReseekingConsumer(faust_aiokafka.Consumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_offset = ReadOffsets()

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
