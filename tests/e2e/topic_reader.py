"""Reading a whole topic back, for assertions: from the start of each partition until nothing new arrives
(Tansu's end offsets are off, so "caught up" cannot be asked of the broker)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition


def read_topic(bootstrap: str, topic: str, idle_seconds: float = 1.5) -> list[Any]:
    """Every record of ``topic``, read from the start of each partition until nothing new arrives."""

    async def _read() -> list[Any]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            partitions = sorted(consumer.partitions_for_topic(topic) or await _partitions(consumer, topic))
            tps = [TopicPartition(topic, p) for p in partitions]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            records: list[Any] = []
            last = time.monotonic()
            while time.monotonic() - last < idle_seconds:
                batch = await consumer.getmany(timeout_ms=300, max_records=5000)
                for items in batch.values():
                    records += items
                    last = time.monotonic()
            return records
        finally:
            await consumer.stop()

    async def _partitions(consumer: AIOKafkaConsumer, name: str) -> set[int]:
        await consumer._client.force_metadata_update()
        return consumer.partitions_for_topic(name) or set()

    return asyncio.run(_read())
