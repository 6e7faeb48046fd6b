"""The consumer's own position: pure decisions, no Faust.

A partition's *position* is the offset of the last record that reached a final outcome. It is stored in
the same table value as the handler's state and the outcome counts, so one changelog record persists all
three. It is the truth after every assignment and recovery (``keyfan.consumer.faust_fixes`` seeks each
source partition to ``position + 1``), and every record the framework delivers is checked against it:

    offset <= position        redelivered: already has its outcome; audited, not counted again
    offset == position + 1    next: process it
    offset >  position + 1    gap: records before it were dropped on the way (faust-streaming drops
                              fetched records around rebalances); do not process, seek back

Why not trust Faust's committed offset: faust-streaming 0.15.3 resumes fetching before it seeks after a
rebalance or a restart, so records fetched from a stale position reach the agent out of order while the
ones in between are dropped and later committed past (measured: runs of 15-213 records skipped after a
SIGKILL once commits existed). Offsets on the shared topic are contiguous (no compaction, no
transactions), so a gap can only mean records were lost in transit, and seeking back always heals it.
``Reseeks`` bounds the healing: if the same gap comes back after several seeks it is a real hole in the
log, which is logged and stepped over rather than spun on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

NO_POSITION = -1


class Arrival(StrEnum):
    REDELIVERED = "redelivered"
    NEXT = "next"
    GAP = "gap"


def arrival(position: int, offset: int) -> Arrival:
    """Where ``offset`` stands relative to a partition's stored ``position``."""
    if offset <= position:
        return Arrival.REDELIVERED
    if offset == position + 1:
        return Arrival.NEXT
    return Arrival.GAP


@dataclass(frozen=True, slots=True)
class Gap:
    """The record at ``offset`` arrived before ``expected``: what the agent must seek back to."""

    partition: int
    expected: int
    offset: int


class SeekAction(StrEnum):
    SEEK = "seek"  # ask the consumer to fetch from the expected offset again
    WAIT = "wait"  # a seek is in progress; records still buffered from before it are ignored
    STEP_OVER = "step_over"  # the same gap after max_seeks seeks: the offsets do not exist


@dataclass
class Reseeks:
    """Decides, per partition, whether a gap needs a (new) seek, is already being healed, or is real."""

    max_seeks: int = 5
    settle_seconds: float = 2.0
    clock: Callable[[], float] = field(default_factory=lambda: time.monotonic)
    _pending: dict[int, tuple[int, int, float]] = field(default_factory=dict)  # p -> (expected, seeks, at)

    def on_gap(self, gap: Gap) -> SeekAction:
        now = self.clock()
        expected, seeks, at = self._pending.get(gap.partition, (gap.expected, 0, float("-inf")))
        if expected != gap.expected:  # a different gap: start counting again
            seeks, at = 0, float("-inf")
        if now - at < self.settle_seconds:
            return SeekAction.WAIT
        if seeks >= self.max_seeks:
            self._pending.pop(gap.partition, None)
            return SeekAction.STEP_OVER
        self._pending[gap.partition] = (gap.expected, seeks + 1, now)
        return SeekAction.SEEK

    def healed(self, partition: int) -> None:
        self._pending.pop(partition, None)

    def reset(self) -> None:
        """A rebalance re-seeks every partition to its position: pending seeks are void."""
        self._pending.clear()


# --- the per-partition slot kept in the state table ------------------------------------------------
POSITION = "position"
STATE = "state"
OUTCOMES = "outcomes"


def new_slot(initial_state: dict[str, Any]) -> dict[str, Any]:
    return {POSITION: NO_POSITION, STATE: initial_state, OUTCOMES: {}}


EXPIRED = "expired"


def advanced(
    slot: dict[str, Any], offset: int, outcome: str, state: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A copy of ``slot`` with ``offset`` finished as ``outcome`` (and the new handler state, if any).

    Offsets skipped between the old position and ``offset`` can only be records the broker deleted
    (retention) before this consumer read them; they are counted as ``expired`` so the books still add up.
    """
    outcomes = dict(slot[OUTCOMES])
    outcomes[outcome] = outcomes.get(outcome, 0) + 1
    expired = offset - slot[POSITION] - 1
    if expired > 0:
        outcomes[EXPIRED] = outcomes.get(EXPIRED, 0) + expired
    return {POSITION: offset, STATE: slot[STATE] if state is None else state, OUTCOMES: outcomes}
