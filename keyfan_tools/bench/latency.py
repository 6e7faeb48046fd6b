"""End-to-end latency: a paced generator -> SQS -> owner -> topic -> sales consumer's handler, all running
at once, at a rate well under capacity. Latency is handler time minus the generator's send time, per event.

Sales events only (the consumer measured reads sales partitions). Every stage is the real one (SQS on
moto with the owner's long polling, the owner pipeline, the broker, the consumer pipeline); the owner and
the consumer share this process, as in the throughput paths.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from keyfan.crypto import SuiteName
from keyfan.models import DepartmentEvent
from keyfan.settings import OwnerSettings
from keyfan_tools.bench.context import BenchContext, BenchError, Codec
from keyfan_tools.bench.paths import (
    STALL_SECONDS,
    AiokafkaPublisher,
    CountingQueue,
    consumer_pipeline,
    create_topic,
    delete_topic,
    fill_queue,
    owner_runner,
    run_consumer_path,
)
from keyfan_tools.bench.payloads import sized_events
from keyfan_tools.bench.samples import LatencySample
from keyfan_tools.bench.stats import percentile
from keyfan_tools.bench.timing import TimedDecryptor, TimedEncryptor

READER = "sales"
WARMUP = 5
BATCH = 5
UNBOUNDED = 1 << 62
# Tansu answers a fetch only when its max wait has passed, even with data waiting: keep it short here.
LATENCY_FETCH_MAX_WAIT_MS = 10


def _owner_default(name: str) -> int:
    return int(OwnerSettings.model_fields[name].default)


async def _paced_send(ctx: BenchContext, events: Sequence[DepartmentEvent], rate: float) -> dict[str, float]:
    generator = ctx.queue("generator")
    sent: dict[str, float] = {}
    interval = BATCH / rate
    next_at = time.monotonic()
    for start in range(0, len(events), BATCH):
        delay = next_at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        next_at += interval
        sent.update(await asyncio.to_thread(fill_queue, generator, events[start : start + BATCH]))
    return sent


async def run_latency(
    ctx: BenchContext, run: int, codec: Codec, suite: SuiteName, size: int, count: int, rate: float
) -> LatencySample:
    topic = f"keyfan.bench.{run}.latency.{codec}.{suite}.{uuid.uuid4().hex[:6]}"
    events = sized_events(WARMUP + count, (READER,), size, 9000 + run)
    warm, measured = events[:WARMUP], events[WARMUP:]
    await create_topic(ctx.bootstrap_servers, topic, ctx.registry.partition_count)
    encryptor = TimedEncryptor(ctx.encryptor(codec, suite))
    publisher = AiokafkaPublisher(ctx.bootstrap_servers)
    await publisher.start()
    queue = CountingQueue(ctx.queue("owner"), [str(e.event_id) for e in events])
    runner = owner_runner(
        ctx, encryptor, publisher, queue, topic, wait_seconds=_owner_default("poll_wait_seconds")
    )
    decryptor = TimedDecryptor(ctx.decryptor(READER, codec))
    built = consumer_pipeline(ctx, READER, decryptor)
    # The consumer runs until cancelled: what ends the run is every sent event reaching the handler.
    consumer = asyncio.ensure_future(
        run_consumer_path(
            ctx,
            built,
            decryptor,
            topic,
            ctx.registry.get(READER).partitions,
            UNBOUNDED,
            WARMUP,
            fetch_max_wait_ms=LATENCY_FETCH_MAX_WAIT_MS,
            stall_seconds=None,
        )
    )
    runner.start()
    try:
        await _paced_send(ctx, warm, rate)
        await _until(lambda: all(str(e.event_id) in built.handler.applied for e in warm), consumer)
        sent = await _paced_send(ctx, measured, rate)
        await _until(lambda: all(key in built.handler.applied for key in sent), consumer)
    finally:
        consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError, BenchError):
            await consumer
        await runner.drain(30.0)
        await publisher.stop()
        await delete_topic(ctx.bootstrap_servers, topic)
    applied, produced = built.handler.applied, built.handler.produced
    total = [1000 * (applied[k] - sent[k]) for k in sent]
    to_publish = [1000 * (produced[k] - sent[k]) for k in sent]
    after_publish = [1000 * (applied[k] - produced[k]) for k in sent]
    return LatencySample(
        run=run,
        codec=codec,
        suite=suite,
        size=size,
        rate_per_second=rate,
        count=len(total),
        p50_ms=percentile(total, 50),
        p99_ms=percentile(total, 99),
        max_ms=max(total),
        to_publish_p50_ms=percentile(to_publish, 50),
        publish_to_handler_p50_ms=percentile(after_publish, 50),
        to_publish_p99_ms=percentile(to_publish, 99),
        publish_to_handler_p99_ms=percentile(after_publish, 99),
    )


async def _until(check: Callable[[], bool], consumer: asyncio.Future[Any]) -> None:
    deadline = time.monotonic() + STALL_SECONDS
    while not check():
        if consumer.done():
            consumer.result()  # re-raise the consumer's failure
            if not check():
                raise BenchError("latency run: the consumer stopped before every event arrived")
        if time.monotonic() > deadline:
            raise BenchError("latency run stalled")
        await asyncio.sleep(0.01)
