"""One measurement of the matrix: every path at one suite, size and codec, on a fresh topic; and the same with
the data-key cache off. Each returns its raw ``Sample``s.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import TypedDict

from keyfan_tools.bench.config import BenchConfig
from keyfan_tools.bench.context import BenchContext, Codec, Suite
from keyfan_tools.bench.paths.broker import fresh_topic
from keyfan_tools.bench.paths.consumer import FOREIGN, READER, ConsumerRun, records_of, run_reader_path
from keyfan_tools.bench.paths.measure import PathRun
from keyfan_tools.bench.paths.owner import run_owner_path
from keyfan_tools.bench.payloads import actual_sizes, distinct_subjects, sized_events
from keyfan_tools.bench.samples import CONSUMER, CONSUMER_DENIED, OWNER_PIPELINE, OWNER_SQS, Sample


class Scenario(TypedDict, total=False):
    """What a sample was measured at (``cache`` defaults to on)."""

    run: int
    codec: Codec
    suite: Suite
    size: int
    cache: bool


def path_sample(path: str, scenario: Scenario, measured: PathRun, subjects: int = 0) -> Sample:
    """The sample of an owner path (each record processed is measured), or the start of a consumer's;
    ``subjects``: how many distinct subjects the measured records are about (the field-level suite)."""
    return Sample(
        path=path,
        **scenario,
        records=measured.records,
        seconds=measured.seconds,
        records_per_second=measured.records_per_second,
        kms_calls=measured.kms_calls,
        warmup_kms_calls=measured.warmup_kms_calls,
        crypto_ms_mean=measured.crypto_ms_mean,
        crypto_share=measured.crypto_share,
        processed=measured.records,
        key_store_calls=measured.key_store_calls,
        warmup_key_store_calls=measured.warmup_key_store_calls,
        subjects=subjects,
        subject_key_ms=measured.subject_key_ms,
        subject_key_share=measured.subject_key_share,
    )


def consumer_sample(
    path: str,
    scenario: Scenario,
    measured: ConsumerRun,
    payload_bytes: float | None = None,
    subjects: int = 0,
) -> Sample:
    return replace(
        path_sample(path, scenario, measured, subjects),
        value_bytes=measured.value_bytes,
        record_bytes=measured.record_bytes,
        payload_bytes=payload_bytes,
        outcomes=measured.outcomes,
        processed=measured.processed,
    )


async def run_scenario(
    ctx: BenchContext, config: BenchConfig, run: int, suite: Suite, size: int, codec: Codec
) -> list[Sample]:
    """Owner pipeline, owner via SQS, consumer decrypt and (encrypted) consumer denied, on one fresh topic."""
    name = f"keyfan.bench.{run}.{suite}.{size}.{codec}.{uuid.uuid4().hex[:6]}"
    departments = ctx.registry.names
    seed = 1000 * run + size
    warm = sized_events(config.warmup, departments, size, seed)
    staged = sized_events(config.pipeline_records, departments, size, seed + 1)
    queued = sized_events(config.sqs_records, departments, size, seed + 2)
    everything = [*warm, *staged, *queued]
    payload = actual_sizes(everything).get(READER)
    scenario = Scenario(run=run, codec=codec, suite=suite, size=size)
    read = [e for e in (*staged, *queued) if e.department == READER]  # what the consumer's window measures
    async with fresh_topic(ctx.bootstrap_servers, name, ctx.registry.partition_count) as topic:
        encryptor = ctx.owner_codec(codec, suite)
        owner = await run_owner_path(ctx, encryptor, topic, staged, warm, via_sqs=False)
        via_sqs = await run_owner_path(ctx, encryptor, topic, queued, (), via_sqs=True)
        samples = [
            path_sample(OWNER_PIPELINE, scenario, owner, distinct_subjects(staged)),
            path_sample(OWNER_SQS, scenario, via_sqs, distinct_subjects(queued)),
        ]
        consumer = await run_reader_path(
            ctx,
            ctx.consumer_codec(READER, codec, suite),
            topic,
            source=READER,
            expected=records_of(READER, everything),
            warmup=records_of(READER, warm),
        )
        samples.append(consumer_sample(CONSUMER, scenario, consumer, payload, distinct_subjects(read)))
        if codec == "encrypted":
            foreign = records_of(FOREIGN, everything)
            denied = await run_reader_path(
                ctx,
                ctx.consumer_codec(READER, codec, suite),
                topic,
                source=FOREIGN,
                expected=foreign,
                warmup=min(1, foreign),
            )
            samples.append(consumer_sample(CONSUMER_DENIED, scenario, denied))
    return samples


async def run_cache_off(
    ctx: BenchContext, config: BenchConfig, run: int, suite: Suite, size: int
) -> list[Sample]:
    """Data-key caching off: one KMS call per record on both sides (KMS figures; small on purpose)."""
    name = f"keyfan.bench.{run}.nocache.{uuid.uuid4().hex[:6]}"
    events = sized_events(config.cache_off_records, ctx.registry.names, size, 7000 + run)
    scenario = Scenario(run=run, codec="encrypted", suite=suite, size=size, cache=False)
    async with fresh_topic(ctx.bootstrap_servers, name, ctx.registry.partition_count) as topic:
        encryptor = ctx.owner_codec("encrypted", suite, cache_enabled=False)
        warm, measured = events[:2], events[2:]
        owner = await run_owner_path(ctx, encryptor, topic, measured, warm, via_sqs=False)
        consumer = await run_reader_path(
            ctx,
            ctx.consumer_codec(READER, "encrypted", suite, cache_enabled=False),
            topic,
            source=READER,
            expected=records_of(READER, events),
            warmup=records_of(READER, warm),
        )
    return [path_sample(OWNER_PIPELINE, scenario, owner), consumer_sample(CONSUMER, scenario, consumer)]
