"""The benchmark run: the matrix of scenarios, on one local stack, in one process (plus real Faust workers
draining a topic, and real services for peak memory, as subprocesses). ``run_benchmark`` returns the
``BenchResults``; ``keyfan_tools.bench.report`` writes them out.

Order matters for fairness: within a run every (suite, size) pair is measured with both codecs back to
back, alternating which codec goes first from one run to the next, with the same generated events.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from keyfan_tools.bench.config import BenchConfig
from keyfan_tools.bench.context import CODECS, FIELDS, BenchContext, BenchError, Codec, Suite
from keyfan_tools.bench.dedupe import measure_dedupe
from keyfan_tools.bench.host import harness_memory, machine_info
from keyfan_tools.bench.latency import LATENCY_FETCH_MAX_WAIT_MS, run_latency
from keyfan_tools.bench.paths.consumer import READER
from keyfan_tools.bench.profile import profile_paths
from keyfan_tools.bench.results import BenchResults, RunConfig
from keyfan_tools.bench.samples import DedupeCost, LatencySample, MemorySample, ProfileSummary, Sample
from keyfan_tools.bench.scenarios import run_cache_off, run_scenario
from keyfan_tools.bench.services import measure_services
from keyfan_tools.bench.summary import summarize
from keyfan_tools.bench.workers.phase import run_workers, worker_sizes

Progress = Callable[[str], None]
FIXED_SIZE = 1024  # the data-key-cache-off and real-process phases always run at 1 KB


@dataclass
class Measured:
    """What a run has measured so far, and the notes on what it could not."""

    samples: list[Sample] = field(default_factory=list)
    latency: list[LatencySample] = field(default_factory=list)
    memory: list[MemorySample] = field(default_factory=list)
    profiles: list[ProfileSummary] = field(default_factory=list)
    dedupe: DedupeCost | None = None
    notes: list[str] = field(default_factory=list)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """An extra phase: if it fails, a note says so and the measurements already made are kept."""
        try:
            yield
        except Exception as exc:
            self.notes.append(f"{name} failed: {type(exc).__name__}: {exc}")


async def run_benchmark(
    ctx: BenchContext, config: BenchConfig, *, work_dir: Path, progress: Progress = lambda _: None
) -> BenchResults:
    began = time.monotonic()
    machine = machine_info()
    loop = asyncio.get_running_loop()
    # As the owner service does: pollers, encrypts and SQS calls all run in threads.
    loop.set_default_executor(ThreadPoolExecutor(max_workers=48, thread_name_prefix="bench"))
    found = Measured()
    await asyncio.to_thread(ctx.purge_queue)
    for run in range(config.runs):
        await run_matrix(ctx, config, run, found, progress)
    if config.profile:
        with found.phase("profiling"):
            found.profiles = await profile_paths(
                ctx, config.profile_records, config.suites[0], config.reference_size
            )
            progress("profiles done")
    if config.real_processes:
        with found.phase("real-process memory phase"):
            found.memory = await asyncio.to_thread(
                measure_services, ctx, config.memory_records, FIXED_SIZE, progress
            )
            progress("real-process memory done")
    found.memory.append(harness_memory(sum(s.processed for s in found.samples)))
    # After the harness's peak RSS is read: a full window (tens of MB) must not count in it.
    with found.phase("dedupe window phase"):
        found.dedupe = run_dedupe(ctx, config, progress)
    found.notes += standard_notes(config)
    return summarize(
        found.samples,
        found.latency,
        found.memory,
        found.profiles,
        dedupe=found.dedupe,
        config=RunConfig(**asdict(config), duration_seconds=round(time.monotonic() - began, 1)),
        machine=replace(machine, load_average_end=os.getloadavg()),
        notes=found.notes,
    )


async def run_matrix(
    ctx: BenchContext, config: BenchConfig, run: int, found: Measured, progress: Progress
) -> None:
    """One run: every suite and size with both codecs, the data-key cache off, and the latency set."""
    order: tuple[Codec, ...] = CODECS if run % 2 == 0 else tuple(reversed(CODECS))
    for suite in config.suites:
        for size in config.sizes:
            for codec in order:
                started = time.monotonic()
                try:
                    found.samples += await run_scenario(ctx, config, run, suite, size, codec)
                except BenchError as exc:  # one stalled scenario must not lose the whole run
                    found.notes.append(
                        f"run {run + 1} {suite} {size} B {codec} failed and is left out: {exc}"
                    )
                    progress(found.notes[-1])
                    await asyncio.to_thread(ctx.purge_queue)
                    continue
                progress(
                    f"run {run + 1}/{config.runs} {suite:<8} {size:>6} B {codec:<9} "
                    f"{time.monotonic() - started:5.1f}s"
                )
    if config.worker_records and worker_sizes(config):
        with found.phase(f"run {run + 1} worker phase"):  # each sample is kept as soon as it is measured
            await run_workers(ctx, config, run, found, progress)
    try:
        found.samples += await run_cache_off(ctx, config, run, config.suites[0], FIXED_SIZE)
        progress(f"run {run + 1}/{config.runs} data-key cache off")
    except BenchError as exc:
        found.notes.append(f"run {run + 1} data-key cache off failed and is left out: {exc}")
    found.latency += await run_latency_set(ctx, config, run, progress, found.notes)


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
        "finance_consumer with their default settings (wire v2, personal fields under subject keys, data-key "
        "cache on), fed through SQS; the bench harness's own peak is given too.",
        *worker_notes(config),
        *fields_notes(config),
        "The machine is shared (2 cores): other engineers' work may have loaded it during the run; see the "
        "load averages.",
    ]


def worker_notes(config: BenchConfig) -> list[str]:
    if not (config.worker_records and worker_sizes(config)):
        return []
    return [
        f"Faust workers: python -m {READER}_consumer (the service), its plaintext twin (the same "
        "create_consumer_app and handler with the bench's plaintext decryptor) and a bare Faust agent that only "
        f"counts, each a subprocess in a fresh group draining {config.worker_records:,} {READER} records "
        "pre-filled by the owner path. Records/s = (records - 1) / (last - first), from each worker's own "
        "record times (the audit records' times; the bare agent's /state), so start-up and group join do not "
        "count.",
    ]


def fields_notes(config: BenchConfig) -> list[str]:
    if FIELDS not in config.suites:
        return []
    return [
        "Suite fields: the owner seals personal fields with subject_keys_from(OwnerSettings, owner session, "
        "key ids), the consumer opens them with subject_keys_from(ConsumerSettings, sales session), each on the "
        "session of its data keys (so its KMS observer counts the wrapping keys' calls too); python -m "
        "sales_consumer builds its own. Each measurement starts with fresh caches, and its events' subjects are "
        "new to the key table (the owner creates their keys). Key-table calls are the store's own count "
        "(SubjectKeyStore.table_calls; a worker's from its /state). The plaintext twin has no subject keys.",
    ]


async def run_latency_set(
    ctx: BenchContext, config: BenchConfig, run: int, progress: Progress, notes: list[str]
) -> list[LatencySample]:
    """Per run: the plaintext twin and each suite, at 1 KB (or the first size measured)."""
    size = config.reference_size
    found = []
    plans: list[tuple[Codec, Suite]] = [("plaintext", config.suites[0])]
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
