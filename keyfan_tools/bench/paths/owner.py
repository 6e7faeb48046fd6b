"""The owner path: SQS (or messages already received) -> the owner's own runner and pipeline -> a topic.

Records/s run from the start of the runner to the last delete of a measured message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry

from keyfan.models import DepartmentEvent
from keyfan.owner import OwnerMetrics, OwnerRunner, owner_runner
from keyfan.settings import OwnerSettings
from keyfan_tools.bench.context import BenchContext
from keyfan_tools.bench.paths.broker import AiokafkaPublisher
from keyfan_tools.bench.paths.measure import MeasureHooks, NoHooks, PathRun, per_record_ms, wait_for
from keyfan_tools.bench.paths.queues import CountingQueue, PreloadedQueue, fill_queue
from keyfan_tools.bench.stats import rate
from keyfan_tools.bench.timing import (
    TimedEncryptor,
    key_store_calls,
    kms_calls,
    reset_timers,
    subject_key_seconds,
    subject_keys_port,
)

# The owner's long poll (the service's default is 2 s); only the drain at the end of a run waits for it.
POLL_WAIT_SECONDS = 1


def owner_default(name: str) -> Any:
    """The owner service's default for one of its settings (``keyfan.settings.OwnerSettings``)."""
    return OwnerSettings.model_fields[name].default


def bench_owner_runner(
    ctx: BenchContext,
    encryptor: TimedEncryptor,
    publisher: AiokafkaPublisher,
    queue: CountingQueue | PreloadedQueue,
    topic: str,
    *,
    wait_seconds: int,
) -> OwnerRunner:
    """The owner service's own wiring (``owner_runner``) with its default settings, around bench I/O; the
    codec's subject keys (the field-level suite) or none."""
    settings = OwnerSettings.model_construct(topic=topic, poll_wait_seconds=wait_seconds)
    return owner_runner(
        settings,
        registry=ctx.registry,
        encryptor=encryptor,
        publisher=publisher,
        queue=queue,
        dead_letters=ctx.queue("owner", dead_letters=True),
        metrics=OwnerMetrics(CollectorRegistry()),
        subject_keys=subject_keys_port(encryptor),
    )


async def _owner_until(
    ctx: BenchContext,
    encryptor: TimedEncryptor,
    publisher: AiokafkaPublisher,
    topic: str,
    queue: CountingQueue | PreloadedQueue,
    count: int,
    hooks: MeasureHooks | None = None,
) -> tuple[float, float]:
    """Run an owner worker until ``count`` messages are deleted; (start, last delete) wall times."""
    runner = bench_owner_runner(ctx, encryptor, publisher, queue, topic, wait_seconds=POLL_WAIT_SECONDS)
    hooks = hooks or NoHooks()
    hooks.start()
    started = time.time()
    runner.start()
    try:
        await wait_for(lambda: queue.deleted >= count, f"owner published {queue.deleted}/{count}")
    finally:
        hooks.stop()
        await runner.drain(30.0)
    return started, queue.last_delete


async def run_owner_path(
    ctx: BenchContext,
    encryptor: TimedEncryptor,
    topic: str,
    events: Sequence[DepartmentEvent],
    warmup: Sequence[DepartmentEvent],
    *,
    via_sqs: bool = True,
    hooks: MeasureHooks | None = None,
) -> PathRun:
    """Warm up (caches, connections, credentials), then measure the owner draining ``events``: from SQS
    (filled beforehand, untimed) or, with ``via_sqs=False``, from messages it has already received."""
    generator = ctx.queue("generator") if via_sqs else None

    async def queue_of(batch: Sequence[DepartmentEvent]) -> CountingQueue | PreloadedQueue:
        if generator is None:
            return PreloadedQueue(batch)
        sent = await asyncio.to_thread(fill_queue, generator, batch)
        return CountingQueue(ctx.queue("owner"), sent)

    publisher = AiokafkaPublisher(ctx.bootstrap_servers)
    await publisher.start()
    try:
        if warmup:
            queue = await queue_of(warmup)
            await _owner_until(ctx, encryptor, publisher, topic, queue, len(warmup))
        warm_calls, warm_key_calls = kms_calls(encryptor), key_store_calls(encryptor)
        reset_timers(encryptor)
        queue = await queue_of(events)
        started, ended = await _owner_until(ctx, encryptor, publisher, topic, queue, len(events), hooks)
    finally:
        await publisher.stop()
    seconds = ended - started
    return PathRun(
        records=len(events),
        seconds=seconds,
        records_per_second=rate(len(events), seconds),
        kms_calls=kms_calls(encryptor) - warm_calls,
        warmup_kms_calls=warm_calls,
        crypto_ms_mean=encryptor.timer.mean_ms,
        crypto_share=encryptor.timer.share_of(seconds),
        key_store_calls=key_store_calls(encryptor) - warm_key_calls,
        warmup_key_store_calls=warm_key_calls,
        subject_key_ms=per_record_ms(subject_key_seconds(encryptor), len(events)),
        subject_key_share=subject_key_seconds(encryptor) / seconds if seconds > 0 else 0.0,
    )
