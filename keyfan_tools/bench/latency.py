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

from keyfan.models import DepartmentEvent
from keyfan_tools.bench.context import BenchContext, BenchError, Codec, Suite
from keyfan_tools.bench.paths.broker import AiokafkaPublisher, fresh_topic
from keyfan_tools.bench.paths.consumer import READER, RecordingHandler, consumer_pipeline, run_consumer_path
from keyfan_tools.bench.paths.measure import wait_for
from keyfan_tools.bench.paths.owner import bench_owner_runner, owner_default
from keyfan_tools.bench.paths.queues import CountingQueue, fill_queue
from keyfan_tools.bench.payloads import sized_events
from keyfan_tools.bench.samples import LatencySample
from keyfan_tools.bench.stats import percentile

WARMUP = 5
BATCH = 5
UNBOUNDED = 1 << 62
# Tansu answers a fetch only when its max wait has passed, even with data waiting: keep it short here.
LATENCY_FETCH_MAX_WAIT_MS = 10


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
    ctx: BenchContext, run: int, codec: Codec, suite: Suite, size: int, count: int, rate: float
) -> LatencySample:
    name = f"keyfan.bench.{run}.latency.{codec}.{suite}.{uuid.uuid4().hex[:6]}"
    events = sized_events(WARMUP + count, (READER,), size, 9000 + run)
    async with fresh_topic(ctx.bootstrap_servers, name, ctx.registry.partition_count) as topic:
        sent, handler = await _send_and_receive(ctx, codec, suite, topic, events, rate)
    return _latency_sample(run, codec, suite, size, rate, sent, handler)


async def _send_and_receive(
    ctx: BenchContext,
    codec: Codec,
    suite: Suite,
    topic: str,
    events: Sequence[DepartmentEvent],
    rate: float,
) -> tuple[dict[str, float], RecordingHandler]:
    """Owner and consumer running at once while the events are sent at ``rate``; their send times, and the
    handler that noted when each one reached it."""
    warm, measured = events[:WARMUP], events[WARMUP:]
    encryptor = ctx.owner_codec(codec, suite)
    publisher = AiokafkaPublisher(ctx.bootstrap_servers)
    await publisher.start()
    queue = CountingQueue(ctx.queue("owner"), [str(e.event_id) for e in events])
    runner = bench_owner_runner(
        ctx, encryptor, publisher, queue, topic, wait_seconds=int(owner_default("poll_wait_seconds"))
    )
    decryptor = ctx.consumer_codec(READER, codec, suite)
    built = consumer_pipeline(ctx, READER, decryptor)
    applied = built.handler.applied
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
        await _arrived(lambda: all(str(e.event_id) in applied for e in warm), "the warm-up", consumer)
        sent = await _paced_send(ctx, measured, rate)
        await _arrived(lambda: all(key in applied for key in sent), "every event", consumer)
    finally:
        consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError, BenchError):
            await consumer
        await runner.drain(30.0)
        await publisher.stop()
    return sent, built.handler


async def _arrived(check: Callable[[], bool], what: str, consumer: asyncio.Future[Any]) -> None:
    await wait_for(
        check, f"latency run, the consumer taking {what} to the handler", interval=0.01, worker=consumer
    )


def _latency_sample(
    run: int,
    codec: Codec,
    suite: Suite,
    size: int,
    rate: float,
    sent: dict[str, float],
    handler: RecordingHandler,
) -> LatencySample:
    applied, produced = handler.applied, handler.produced
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
