"""The benchmark's Kafka I/O: topics made fresh for each measurement, and the owner's publisher on aiokafka."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Mapping

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from keyfan.envelope import Headers
from keyfan.exceptions import PublishFailed

CLIENT_ID = "keyfan-bench"


async def create_topics(bootstrap: str, partitions: Mapping[str, int]) -> None:
    """Create each topic named in ``partitions`` with its number of partitions."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id=CLIENT_ID)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, n, replication_factor=1) for name, n in partitions.items()])
    finally:
        await admin.close()


async def delete_topic(bootstrap: str, name: str) -> None:
    """Free the broker's memory (Tansu keeps every record in RAM); best effort."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id=CLIENT_ID)
    await admin.start()
    try:
        await admin.delete_topics([name])
    except KafkaError:
        pass
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def fresh_topic(bootstrap: str, name: str, partitions: int) -> AsyncIterator[str]:
    """A topic for one measurement, deleted afterwards whatever happens; yields its name."""
    await create_topics(bootstrap, {name: partitions})
    try:
        yield name
    finally:
        await delete_topic(bootstrap, name)


class AiokafkaPublisher:
    """The owner's ``Publisher`` on a plain aiokafka producer (acks=all, no idempotence: Tansu cannot)."""

    def __init__(self, bootstrap: str) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=False, client_id="keyfan-bench-owner"
        )
        self.last_ack = 0.0

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def publish(self, *, topic: str, partition: int, key: bytes, value: bytes, headers: Headers) -> int:
        try:
            metadata = await self._producer.send_and_wait(
                topic, value=value, key=key, partition=partition, headers=headers
            )
        except KafkaError as exc:
            raise PublishFailed(f"broker did not acknowledge: {type(exc).__name__}") from exc
        self.last_ack = time.time()
        return int(metadata.offset)
