"""A workaround for an at-least-once hole in faust-streaming 0.15.3 (measured here on Tansu).

During a rebalance or table recovery Faust suspends its flow; records already fetched while it is
suspended are dropped from the in-memory batch *and* their offsets are marked as read. Faust heals this
by seeking every assigned partition to its committed offset afterwards, but aiokafka's
``seek_to_committed`` only seeks when the committed offset is > 0. A partition that has no commit yet
(a new group, or a worker SIGKILLed before its first commit) is therefore not re-positioned, and the
dropped records are skipped for good: seen in the restart e2e test as offsets 1..28 of a partition
never reaching the agent, and then committed past as a "gap".

The fix: after Faust's seek, position every uncommitted source partition at its earliest offset (what
``consumer_auto_offset_reset="earliest"`` means anyway). Records already handled are redelivered, which
at-least-once processing and the consumer's dedupe absorb.
"""

from __future__ import annotations

from collections.abc import Mapping

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

CHANGELOG_SUFFIX = "-changelog"


class ReseekingConsumer(faust_aiokafka.Consumer):
    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed = await super().seek_to_committed()
        uncommitted = [
            tp for tp, offset in committed.items() if not offset and not tp.topic.endswith(CHANGELOG_SUFFIX)
        ]
        if uncommitted:
            earliest = await self.earliest_offsets(*uncommitted)
            await self.seek_wait({tp: earliest.get(tp) or 0 for tp in uncommitted})
        return committed


class ReseekingTransport(faust_aiokafka.Transport):
    Consumer = ReseekingConsumer
