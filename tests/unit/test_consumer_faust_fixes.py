"""ReseekingConsumer: uncommitted source partitions are re-positioned at their earliest offset."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from keyfan.consumer.faust_fixes import ReseekingConsumer


async def test_uncommitted_source_partitions_are_reseeked(monkeypatch: pytest.MonkeyPatch) -> None:
    committed = {TP("t", 0): None, TP("t", 1): 5, TP("t", 2): 0, TP("g-state-changelog", 0): None}

    async def faust_seek(self: object) -> Mapping[TP, int | None]:
        return committed

    monkeypatch.setattr(faust_aiokafka.Consumer, "seek_to_committed", faust_seek)
    consumer = object.__new__(ReseekingConsumer)
    sought: dict[TP, int] = {}

    async def earliest_offsets(*tps: TP) -> Mapping[TP, int]:
        return {tp: 3 for tp in tps}

    async def seek_wait(partitions: Mapping[TP, int]) -> None:
        sought.update(partitions)

    consumer.earliest_offsets = earliest_offsets  # type: ignore[method-assign]
    consumer.seek_wait = seek_wait  # type: ignore[method-assign]
    assert await consumer.seek_to_committed() == committed
    # None and 0 (which aiokafka does not seek to) are re-positioned; committed > 0 and changelogs are not
    assert sought == {TP("t", 0): 3, TP("t", 2): 3}
