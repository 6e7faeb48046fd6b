"""The benchmark run: the matrix of scenarios, on one local stack, in one process (plus real services for
peak memory). ``run_benchmark`` returns the results document; ``keyfan_tools.bench.report`` writes it out.

Order matters for fairness: within a run every (suite, size) pair is measured with both codecs back to
back, alternating which codec goes first from one run to the next, with the same generated events.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import platform
import resource
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from keyfan.crypto import SuiteName
from keyfan.logs import QUIET_LOGGERS, logging_config
from keyfan.models import DepartmentEvent
from keyfan.settings import ConsumerSettings
from keyfan_tools.bench.context import CODECS, BenchContext, BenchError, Codec
from keyfan_tools.bench.dedupe import measure_dedupe
from keyfan_tools.bench.latency import LATENCY_FETCH_MAX_WAIT_MS, run_latency
from keyfan_tools.bench.paths import (
    consumer_pipeline,
    create_topic,
    delete_topic,
    run_consumer_path,
    run_owner_path,
)
from keyfan_tools.bench.payloads import actual_sizes, sized_events
from keyfan_tools.bench.profile import profile_paths
from keyfan_tools.bench.samples import (
    CONSUMER,
    CONSUMER_DENIED,
    OWNER_PIPELINE,
    OWNER_SQS,
    DedupeCost,
    LatencySample,
    MemorySample,
    ProfileSummary,
    Sample,
)
from keyfan_tools.bench.services import measure_services
from keyfan_tools.bench.summary import summarize
from keyfan_tools.bench.timing import TimedDecryptor, TimedEncryptor

Progress = Callable[[str], None]
READER = "sales"  # the consumer measured; it may read sales records and is denied finance's
FOREIGN = "finance"


@dataclass(frozen=True)
class BenchConfig:
    runs: int = 3
    sizes: tuple[int, ...] = (256, 1024, 16384)
    suites: tuple[SuiteName, ...] = ("signed", "unsigned")
    warmup: int = 20
    pipeline_records: int = 1500
    sqs_records: int = 150
    cache_off_records: int = 60
    latency_records: int = 200
    latency_rate: float = 25.0
    memory_records: int = 600
    profile_records: int = 300
    # The dedupe window (pure CPU, in-process): a full window of the consumer's size, then timed records.
    dedupe_window_events: int = ConsumerSettings.model_fields["dedupe_window_events"].default
    dedupe_records: int = 20_000
    dedupe_runs: int = 5
    real_processes: bool = True
    profile: bool = True
    quick: bool = False

    @classmethod
    def quick_config(cls) -> BenchConfig:
        return cls(
            runs=1,
            warmup=4,
            pipeline_records=40,
            sqs_records=20,
            cache_off_records=8,
            latency_records=20,
            latency_rate=20.0,
            memory_records=20,
            profile_records=20,
            dedupe_runs=3,
            quick=True,
        )

    def with_overrides(self, **changes: Any) -> BenchConfig:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def machine_info() -> dict[str, Any]:
    """nproc, CPU model, RAM, Python: what the results were measured on."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_start": list(os.getloadavg()),
    }


@contextlib.contextmanager
def bench_logging(path: Path) -> Iterator[None]:
    """The services' JSON log lines go to a file while the benchmark runs (the pipelines log as in
    production, off the terminal); the noisy libraries are held where the services hold them. Restored after.
    """
    config = logging_config("keyfan-bench", "INFO")
    formatter_args = dict(config["formatters"]["json"])
    factory = formatter_args.pop("()")
    module, _, name = factory.rpartition(".")
    formatter = getattr(importlib.import_module(module), name)(**formatter_args)
    handler = logging.FileHandler(path)
    handler.setFormatter(formatter)
    keyfan = logging.getLogger("keyfan")
    saved = (keyfan.level, keyfan.propagate)
    quiet = {name: logging.getLogger(name) for name in QUIET_LOGGERS}
    saved_levels = {name: logger.level for name, logger in quiet.items()}
    keyfan.addHandler(handler)
    keyfan.setLevel(logging.INFO)
    keyfan.propagate = False
    for name, logger in quiet.items():
        logger.setLevel(QUIET_LOGGERS[name])
    try:
        yield
    finally:
        keyfan.removeHandler(handler)
        handler.close()
        keyfan.setLevel(saved[0])
        keyfan.propagate = saved[1]
        for name, logger in quiet.items():
            logger.setLevel(saved_levels[name])


def _count(events: Sequence[DepartmentEvent], department: str) -> int:
    return sum(1 for e in events if e.department == department)


async def run_scenario(
    ctx: BenchContext, config: BenchConfig, run: int, suite: SuiteName, size: int, codec: Codec
) -> list[Sample]:
    """Owner pipeline, owner via SQS, consumer decrypt and (encrypted) consumer denied, on one fresh topic."""
    topic = f"keyfan.bench.{run}.{suite}.{size}.{codec}.{uuid.uuid4().hex[:6]}"
    departments = ctx.registry.names
    seed = 1000 * run + size
    warm = sized_events(config.warmup, departments, size, seed)
    staged = sized_events(config.pipeline_records, departments, size, seed + 1)
    queued = sized_events(config.sqs_records, departments, size, seed + 2)
    payload = actual_sizes([*warm, *staged, *queued]).get(READER)
    base: dict[str, Any] = {"run": run, "codec": codec, "suite": suite, "size": size}
    await create_topic(ctx.bootstrap_servers, topic, ctx.registry.partition_count)
    try:
        encryptor = TimedEncryptor(ctx.encryptor(codec, suite))
        owner = await run_owner_path(ctx, encryptor, topic, staged, warm, via_sqs=False)
        via_sqs = await run_owner_path(ctx, encryptor, topic, queued, (), via_sqs=True)
        samples = [
            Sample(path=OWNER_PIPELINE, **base, **_owner_fields(owner)),
            Sample(path=OWNER_SQS, **base, **_owner_fields(via_sqs)),
        ]
        everything = [*warm, *staged, *queued]
        decryptor = TimedDecryptor(ctx.decryptor(READER, codec))
        consumer = await run_consumer_path(
            ctx,
            consumer_pipeline(ctx, READER, decryptor),
            decryptor,
            topic,
            ctx.registry.get(READER).partitions,
            expected=_count(everything, READER),
            warmup=_count(warm, READER),
        )
        samples.append(Sample(path=CONSUMER, **base, **_consumer_fields(consumer), payload_bytes=payload))
        if codec == "encrypted":
            decryptor = TimedDecryptor(ctx.decryptor(READER, codec))
            denied = await run_consumer_path(
                ctx,
                consumer_pipeline(ctx, READER, decryptor),
                decryptor,
                topic,
                ctx.registry.get(FOREIGN).partitions,
                expected=_count(everything, FOREIGN),
                warmup=min(1, _count(everything, FOREIGN)),
            )
            samples.append(Sample(path=CONSUMER_DENIED, **base, **_consumer_fields(denied)))
        return samples
    finally:
        await delete_topic(ctx.bootstrap_servers, topic)


async def run_cache_off(
    ctx: BenchContext, config: BenchConfig, run: int, suite: SuiteName, size: int
) -> list[Sample]:
    """Data-key caching off: one KMS call per record on both sides (KMS figures; small on purpose)."""
    topic = f"keyfan.bench.{run}.nocache.{uuid.uuid4().hex[:6]}"
    departments = ctx.registry.names
    events = sized_events(config.cache_off_records, departments, size, 7000 + run)
    base: dict[str, Any] = {"run": run, "codec": "encrypted", "suite": suite, "size": size, "cache": False}
    await create_topic(ctx.bootstrap_servers, topic, ctx.registry.partition_count)
    try:
        encryptor = TimedEncryptor(ctx.encryptor("encrypted", suite, cache_enabled=False))
        warm, measured = events[:2], events[2:]
        owner = await run_owner_path(ctx, encryptor, topic, measured, warm, via_sqs=False)
        decryptor = TimedDecryptor(ctx.decryptor(READER, "encrypted", cache_enabled=False))
        consumer = await run_consumer_path(
            ctx,
            consumer_pipeline(ctx, READER, decryptor),
            decryptor,
            topic,
            ctx.registry.get(READER).partitions,
            expected=_count(events, READER),
            warmup=_count(warm, READER),
        )
    finally:
        await delete_topic(ctx.bootstrap_servers, topic)
    return [
        Sample(path=OWNER_PIPELINE, **base, **_owner_fields(owner)),
        Sample(path=CONSUMER, **base, **_consumer_fields(consumer)),
    ]


def _owner_fields(run: Any) -> dict[str, Any]:
    return {
        "records": run.records,
        "seconds": run.seconds,
        "records_per_second": run.records_per_second,
        "kms_calls": run.kms_calls,
        "warmup_kms_calls": run.warmup_kms_calls,
        "crypto_ms_mean": run.encrypt_ms_mean,
        "crypto_share": run.encrypt_share,
        "processed": run.records,
    }


def _consumer_fields(run: Any) -> dict[str, Any]:
    return {
        "records": run.records,
        "seconds": run.seconds,
        "records_per_second": run.records_per_second,
        "kms_calls": run.kms_calls,
        "warmup_kms_calls": run.warmup_kms_calls,
        "crypto_ms_mean": run.decrypt_ms_mean,
        "crypto_share": run.decrypt_share,
        "value_bytes": run.value_bytes,
        "record_bytes": run.record_bytes,
        "outcomes": run.outcomes,
        "processed": run.processed,
    }


async def run_benchmark(
    ctx: BenchContext, config: BenchConfig, *, work_dir: Path, progress: Progress = lambda _: None
) -> dict[str, Any]:
    began = time.monotonic()
    machine = machine_info()
    loop = asyncio.get_running_loop()
    # As the owner service does: pollers, encrypts and SQS calls all run in threads.
    loop.set_default_executor(ThreadPoolExecutor(max_workers=48, thread_name_prefix="bench"))
    samples: list[Sample] = []
    latency: list[LatencySample] = []
    memory: list[MemorySample] = []
    profiles: list[ProfileSummary] = []
    dedupe: DedupeCost | None = None
    notes: list[str] = []
    await asyncio.to_thread(ctx.purge_queue)
    for run in range(config.runs):
        order: tuple[Codec, ...] = CODECS if run % 2 == 0 else tuple(reversed(CODECS))
        for suite in config.suites:
            for size in config.sizes:
                for codec in order:
                    started = time.monotonic()
                    try:
                        samples += await run_scenario(ctx, config, run, suite, size, codec)
                    except BenchError as exc:  # one stalled scenario must not lose the whole run
                        notes.append(f"run {run + 1} {suite} {size} B {codec} failed and is left out: {exc}")
                        progress(notes[-1])
                        await asyncio.to_thread(ctx.purge_queue)
                        continue
                    progress(
                        f"run {run + 1}/{config.runs} {suite:<8} {size:>6} B {codec:<9} "
                        f"{time.monotonic() - started:5.1f}s"
                    )
        try:
            samples += await run_cache_off(ctx, config, run, config.suites[0], 1024)
            progress(f"run {run + 1}/{config.runs} data-key cache off")
        except BenchError as exc:
            notes.append(f"run {run + 1} data-key cache off failed and is left out: {exc}")
        latency += await run_latency_set(ctx, config, run, progress, notes)
    if config.profile:
        try:
            size = 1024 if 1024 in config.sizes else config.sizes[0]
            profiles = await profile_paths(ctx, config.profile_records, config.suites[0], size)
            progress("profiles done")
        except Exception as exc:  # a failed extra phase must not lose the measurements already made
            notes.append(f"profiling failed: {type(exc).__name__}: {exc}")
    if config.real_processes:
        try:
            memory = await asyncio.to_thread(measure_services, ctx, config.memory_records, 1024, progress)
            progress("real-process memory done")
        except Exception as exc:
            notes.append(f"real-process memory phase failed: {type(exc).__name__}: {exc}")
    memory.append(harness_memory(sum(s.processed for s in samples)))
    # After the harness's peak RSS is read: a full window (tens of MB) must not count in it.
    try:
        dedupe = run_dedupe(ctx, config, progress)
    except Exception as exc:  # as for the other extra phases: keep what was measured
        notes.append(f"dedupe window phase failed: {type(exc).__name__}: {exc}")
    notes += standard_notes(config)
    machine["load_average_end"] = list(os.getloadavg())
    config_doc = {**asdict(config), "duration_seconds": round(time.monotonic() - began, 1)}
    return summarize(
        samples, latency, memory, profiles, dedupe=dedupe, config=config_doc, machine=machine, notes=notes
    )


def run_dedupe(ctx: BenchContext, config: BenchConfig, progress: Progress) -> DedupeCost:
    """The measured consumer's dedupe window, full, on the real EventWindow (no broker: pure CPU)."""
    started = time.monotonic()
    cost = measure_dedupe(
        ctx.registry.get(READER).partitions,
        window_events=config.dedupe_window_events,
        steady_records=config.dedupe_records,
        runs=config.dedupe_runs,
    )
    progress(
        f"dedupe window {cost.window_ids:,} ids: {cost.record_us:.2f} us/record, {cost.memory_mb:.1f} MB, "
        f"rebuild {cost.rebuild_ms:.0f} ms ({time.monotonic() - started:.1f}s)"
    )
    return cost


def harness_memory(records: int) -> MemorySample:
    """The benchmark process itself (all in-process paths, both codecs): its peak RSS, said plainly."""
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    rss_kb = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss_kb = int(line.split()[1])
    return MemorySample(
        process="bench harness (in-process owner + consumers, all runs)",
        pid=os.getpid(),
        vmhwm_kb=int(peak_kb),
        vmrss_kb=rss_kb,
        records=records,
        kms_calls=None,
    )


def standard_notes(config: BenchConfig) -> list[str]:
    return [
        "Throughput and latency paths run in one process on the services' own pipelines "
        "(keyfan.owner.OwnerPipeline/OwnerRunner, keyfan.consumer.RecordPipeline) with an injected codec; "
        "Kafka I/O is plain aiokafka (acks=all) instead of Faust, state is a dict instead of a Faust Table, "
        "audit records are serialised but not produced.",
        "The owner path (SQS -> topic) is bounded by moto (about 14 ms per call, one server thread): "
        "'owner pipeline (no SQS)' is the same pipeline fed already-received messages.",
        "The plaintext twin frames its value with the key ARN and the encryption context (as an Encryption SDK "
        "header does), so the consumer's checks run on both codecs; its records say keyfan-content: plaintext.",
        "Payload size is the sealed plaintext (the bytes encrypted). A sales order cannot be as small as 256 B: "
        "in the 256 B runs sales payloads are trimmed to one line item and are larger (see 'Sealed plaintext B').",
        f"Latency: a paced generator ({config.latency_rate:g} events/s, sales only) with owner and consumer "
        "running at once; the bench consumer fetches with fetch_max_wait_ms="
        f"{LATENCY_FETCH_MAX_WAIT_MS} because Tansu holds every fetch for the full max wait (Faust's 1500 ms would "
        "add about 0.5-0.7 s to both codecs alike).",
        "Peak RSS of the real services is measured on python -m owner_service / sales_consumer / "
        "finance_consumer with their default settings (signed suite, cache on), fed through SQS; the bench "
        "harness's own peak is given too.",
        "The machine is shared (2 cores): other engineers' work may have loaded it during the run; see the "
        "load averages.",
    ]


async def run_latency_set(
    ctx: BenchContext, config: BenchConfig, run: int, progress: Progress, notes: list[str]
) -> list[LatencySample]:
    """Per run: the plaintext twin and each suite, at 1 KB (or the first size measured)."""
    size = 1024 if 1024 in config.sizes else config.sizes[0]
    found = []
    plans: list[tuple[Codec, SuiteName]] = [("plaintext", config.suites[0])]
    plans += [("encrypted", suite) for suite in config.suites]
    if run % 2:
        plans.reverse()
    for codec, suite in plans:
        started = time.monotonic()
        await asyncio.to_thread(ctx.purge_queue)
        try:
            found.append(
                await run_latency(ctx, run, codec, suite, size, config.latency_records, config.latency_rate)
            )
        except BenchError as exc:
            notes.append(f"run {run + 1} latency {codec} {suite} failed and is left out: {exc}")
            progress(notes[-1])
            continue
        progress(
            f"run {run + 1}/{config.runs} latency {codec} {suite if codec == 'encrypted' else ''} "
            f"p50 {found[-1].p50_ms:.0f} ms p99 {found[-1].p99_ms:.0f} ms ({time.monotonic() - started:.1f}s)"
        )
    return found
