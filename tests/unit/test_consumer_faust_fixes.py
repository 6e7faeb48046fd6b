"""ReseekingConsumer: after Faust's seek, source partitions are positioned at the table's positions."""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import pytest
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from keyfan.consumer.faust_fixes import ReadOffsets, ReseekingConsumer
from keyfan.consumer.position import POSITION

# What Faust's own seek found committed: a stale 40 for partition 0 (whose table position is 36), none
# for partition 1, 7 for partition 2 (never processed by us: a table with no slot), and a changelog.
COMMITTED = {TP("t", 0): 40, TP("t", 1): None, TP("t", 2): 7, TP("g-state-changelog", 0): None}


class FakePipeline:
    def __init__(self) -> None:
        self.store: dict[str, Any] = {"0": {POSITION: 36}}
        self.log_start: dict[int, int] = {}

    def expected_offset(self, partition: int) -> int:
        slot = self.store.get(str(partition))
        return max((slot[POSITION] if slot else -1) + 1, self.log_start.get(partition, 0))


class FakeRuntime:
    def __init__(self) -> None:
        self.settings = SimpleNamespace(topic="t")
        self.pipeline = FakePipeline()
        self.restored = 0

    def tracks(self, partition: int) -> bool:
        return True

    def positions_restored(self) -> None:
        self.restored += 1


def _consumer(monkeypatch: pytest.MonkeyPatch, in_recovery: bool = False) -> tuple[Any, dict[TP, int]]:
    async def faust_seek(self: object) -> Mapping[TP, int | None]:
        return COMMITTED

    monkeypatch.setattr(faust_aiokafka.Consumer, "seek_to_committed", faust_seek)
    consumer: Any = object.__new__(ReseekingConsumer)
    consumer.app = SimpleNamespace(runtime=FakeRuntime(), in_recovery=in_recovery)
    consumer._read_offset = ReadOffsets()
    sought: dict[TP, int] = {}

    async def earliest_offsets(*tps: TP) -> Mapping[TP, int]:
        return {tp: 3 for tp in tps}

    async def seek_wait(partitions: Mapping[TP, int]) -> None:
        sought.update(partitions)

    consumer.earliest_offsets = earliest_offsets
    consumer.seek_wait = seek_wait
    return consumer, sought


async def test_source_partitions_are_sought_to_the_stored_positions(monkeypatch: pytest.MonkeyPatch) -> None:
    consumer, sought = _consumer(monkeypatch)
    result = await consumer.seek_to_committed()
    # the stored position wins over Faust's committed offset; partitions never processed start at the
    # log start; changelogs are left to Faust's recovery
    assert sought == {TP("t", 0): 37, TP("t", 1): 3, TP("t", 2): 3}
    assert result == {**COMMITTED, **sought}
    assert consumer.app.runtime.restored == 1


async def test_records_wait_until_a_recovery_has_finished(monkeypatch: pytest.MonkeyPatch) -> None:
    # Faust also seeks mid-rebalance; the table is final only once its recovery is over
    consumer, _ = _consumer(monkeypatch, in_recovery=True)
    await consumer.seek_to_committed()
    assert consumer.app.runtime.restored == 0


def test_commits_follow_the_stored_positions_not_faust_acks(monkeypatch: pytest.MonkeyPatch) -> None:
    # Faust would commit up to its acks (99), which include records the agent set aside after a gap
    monkeypatch.setattr(faust_aiokafka.Consumer, "_new_offset", lambda self, tp: 99)
    consumer, _ = _consumer(monkeypatch)
    runtime = consumer.app.runtime
    runtime.committable_offset = lambda p: 37 if p == 0 else None
    assert consumer._new_offset(TP("t", 0)) == 37  # position 36 + 1
    assert consumer._new_offset(TP("t", 1)) is None  # nothing processed yet: nothing to commit
    assert consumer._new_offset(TP("g-state-changelog", 0)) == 99  # not ours


def test_a_pinned_read_offset_is_not_undone_by_records_fetched_before_the_seek() -> None:
    reads = ReadOffsets()
    tp = TP("t", 0)
    reads[tp] = 66  # Faust handed over offset 66 (fetched before the seek)
    reads.pin(tp, 37)  # the agent found 37-65 missing and sought back
    reads[tp] = 67  # the rest of the old batch is handed over: must not move the read offset
    assert reads[tp] == 37  # so Faust's fetch loop does not drop the re-fetched 37, 38, ...
    reads[tp] = 37  # the first re-fetched record: the pin is released
    reads[tp] = 38
    assert reads[tp] == 38
    assert reads[TP("t", 1)] is None  # still Faust's defaultdict
