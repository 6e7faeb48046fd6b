"""Declare the Kafka topics on the local broker: what MSK + an ops runbook do in production.

Tansu auto-creates a topic on first produce, with the wrong partition count; declaring every topic up front
means a typo in a topic name fails loudly instead of silently creating a one-partition topic.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from typing import Any, TypeVar

from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic

from keyfan.exceptions import LocalStackError
from keyfan_tools.local.state import Topics

T = TypeVar("T")


def topic_partitions(topics: Topics) -> dict[str, int]:
    """The shared topic carries every department's partitions; audit and DLQ are low-volume, one partition."""
    return {topics.events: topics.partitions, topics.audit: 1, topics.dlq: 1}


async def ensure_topics(bootstrap_servers: str, wanted: dict[str, int]) -> list[str]:
    """Create missing topics and grow the shared one when a department was added; return what was done.

    Tansu does not implement CreatePartitions, so a topic that must grow is deleted and re-created: its
    records are lost, which the memory-only local broker makes acceptable (and the note says so).
    """
    notes: list[str] = []
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="keyfan-local-stack")
    await admin.start()
    try:
        existing = await _partition_counts(admin, list(wanted))
        grow = {name: n for name, n in wanted.items() if name in existing and existing[name] < n}
        for name, n in grow.items():
            try:
                await admin.create_partitions({name: NewPartitions(n)})
                notes.append(f"topic {name}: grown to {n} partitions")
            except Exception:
                await admin.delete_topics([name])
                await _await_gone(admin, name)
                existing.pop(name)
                notes.append(
                    f"topic {name}: re-created with {n} partitions (the broker cannot add partitions; "
                    "its records were dropped, restart its consumers)"
                )
        missing = [
            NewTopic(name, n, replication_factor=1) for name, n in wanted.items() if name not in existing
        ]
        if missing:
            await admin.create_topics(missing)
            notes += [f"topic {t.name}: created with {t.num_partitions} partitions" for t in missing]
        final = await _partition_counts(admin, list(wanted))
        wrong = {name: final.get(name) for name, n in wanted.items() if final.get(name) != n}
        if wrong:
            raise LocalStackError(f"topics not as declared on the local broker: {wrong} (wanted {wanted})")
        return notes
    finally:
        await admin.close()


async def _await_gone(admin: AIOKafkaAdminClient, name: str, within: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while name in set(await admin.list_topics()):
        if loop.time() > deadline:
            raise LocalStackError(f"topic {name} still exists {within:.0f}s after deleting it")
        await asyncio.sleep(0.1)


async def _partition_counts(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    listed = set(await admin.list_topics())
    present = [n for n in names if n in listed]
    if not present:
        return {}
    described = await admin.describe_topics(present)
    return {d["topic"]: len(d["partitions"]) for d in described if not d.get("error_code")}


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from sync code, even when the caller already sits inside an event loop (async tests)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
