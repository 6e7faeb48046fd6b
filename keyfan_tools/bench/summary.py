"""Pure: raw samples -> ``BenchResults`` (medians over runs, paired ratios, goals). No I/O.

Every encrypted figure is paired with its plaintext twin *from the same run* (same broker, same sizes, same
minute), the ratio is taken run by run, and the reported ratio is the median of those ratios.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, replace

from keyfan_tools.bench.fields import fields_rows
from keyfan_tools.bench.goals import (
    GOAL_SUITE,
    KMS_GOAL_PER_1000,
    LATENCY_GOAL_MS,
    THROUGHPUT_GOAL,
    goal_applies,
    goals,
    handler_delta,
)
from keyfan_tools.bench.results import (
    Accounting,
    BenchResults,
    BytesRow,
    DedupeShare,
    DedupeSummary,
    KmsRow,
    LatencyRow,
    Machine,
    MemoryRow,
    RunConfig,
    ThroughputRow,
    Unaccounted,
)
from keyfan_tools.bench.samples import (
    CONSUMER,
    CONSUMER_DENIED,
    CONSUMER_WORKER,
    FIELDS_SUITE,
    OWNER_PIPELINE,
    OWNER_SQS,
    PATH_TITLES,
    PATHS,
    DedupeCost,
    LatencySample,
    MemorySample,
    ProfileSummary,
    Sample,
)
from keyfan_tools.bench.stats import median, median_or_none, paired_ratios, per_thousand
from keyfan_tools.bench.workers.rows import worker_rows

KMS_SIDES: dict[str, tuple[str, ...]] = {
    "owner": (OWNER_PIPELINE, OWNER_SQS),
    "consumer": (CONSUMER,),
    "consumer_denied": (CONSUMER_DENIED,),
}
TWIN_BASELINE = "plaintext twin"
DENIED_BASELINE = "plaintext consumer decrypt path (no plaintext twin of a denial)"


def _med(values: Iterable[float]) -> float | None:
    found = list(values)
    return median(found) if found else None


def _by_run(samples: Iterable[Sample]) -> dict[int, Sample]:
    return {s.run: s for s in samples}


def _paired(
    samples: Sequence[Sample], path: str, suite: str, size: int
) -> tuple[dict[int, Sample], dict[int, Sample], list[int]]:
    """The encrypted samples of ``path`` by run, their plaintext twins by run, and the runs that have both.
    A denial has no plaintext twin: it is set against the plaintext consumer."""
    twin_path = CONSUMER if path == CONSUMER_DENIED else path
    encrypted = _by_run(
        s for s in samples if (s.path, s.codec, s.suite, s.size) == (path, "encrypted", suite, size)
    )
    plaintext = _by_run(
        s for s in samples if (s.path, s.codec, s.suite, s.size) == (twin_path, "plaintext", suite, size)
    )
    return encrypted, plaintext, sorted(set(encrypted) & set(plaintext))


def _encrypted_keys(samples: Iterable[Sample], path: str) -> list[tuple[str, int]]:
    """The (suite, size) pairs measured encrypted on ``path``, in order."""
    return sorted({(s.suite, s.size) for s in samples if s.path == path and s.codec == "encrypted"})


def throughput_rows(samples: Sequence[Sample]) -> list[ThroughputRow]:
    cached = [s for s in samples if s.cache]
    return [
        _throughput_row(cached, path, suite, size)
        for path in PATHS
        for suite, size in _encrypted_keys(cached, path)
    ]


def _throughput_row(cached: Sequence[Sample], path: str, suite: str, size: int) -> ThroughputRow:
    enc, plain, runs = _paired(cached, path, suite, size)
    enc_rps = [enc[r].records_per_second for r in runs]
    plain_rps = [plain[r].records_per_second for r in runs]
    ratios = paired_ratios(enc_rps, plain_rps)
    ratio = median_or_none(ratios)
    goal = THROUGHPUT_GOAL if goal_applies(path, suite, size) else None
    untimed = path == CONSUMER_WORKER  # a subprocess: its crypto calls are not timed, only its records
    return ThroughputRow(
        path=path,
        title=PATH_TITLES[path],
        suite=suite,
        size=size,
        runs=len(runs),
        records_per_run=_med(float(enc[r].records) for r in runs),
        encrypted_rps=_med(enc_rps),
        plaintext_rps=_med(plain_rps),
        ratio=ratio,
        encrypted_rps_runs=enc_rps,
        plaintext_rps_runs=plain_rps,
        ratio_runs=ratios,
        baseline=DENIED_BASELINE if path == CONSUMER_DENIED else TWIN_BASELINE,
        crypto_ms_mean=None if untimed else _med(enc[r].crypto_ms_mean for r in runs),
        crypto_share=None if untimed else _med(enc[r].crypto_share for r in runs),
        plaintext_codec_ms_mean=None if untimed else _med(plain[r].crypto_ms_mean for r in runs),
        goal=goal,
        meets_goal=None if goal is None or ratio is None else ratio >= goal,
    )


def kms_rows(samples: Sequence[Sample]) -> list[KmsRow]:
    """The department data keys' calls (the field-level suite's, subject keys included, are in its rows)."""
    rows = []
    encrypted = [s for s in samples if s.codec == "encrypted" and s.suite != FIELDS_SUITE]
    for side, paths in KMS_SIDES.items():
        for cache in (True, False):
            chosen = [s for s in encrypted if s.path in paths and s.cache == cache]
            if chosen:
                rows.append(_kms_row(side, cache, chosen))
    return rows


def _kms_row(side: str, cache: bool, chosen: Sequence[Sample]) -> KmsRow:
    runs = sorted({s.run for s in chosen})
    by_run = [[s for s in chosen if s.run == run] for run in runs]
    calls_runs = [sum(s.kms_calls for s in mine) for mine in by_run]
    records_runs = [sum(s.records for s in mine) for mine in by_run]
    warm_runs = [sum(s.warmup_kms_calls for s in mine) for mine in by_run]
    per_run = [per_thousand(calls, records) for calls, records in zip(calls_runs, records_runs, strict=True)]
    value = median(per_run)
    goal = KMS_GOAL_PER_1000 if cache and side != "consumer_denied" else None
    return KmsRow(
        side=side,
        cache="on" if cache else "off",
        runs=len(runs),
        per_1000=value,
        per_1000_runs=per_run,
        calls_runs=calls_runs,
        records_runs=records_runs,
        warmup_calls_runs=warm_runs,
        warmup_calls=median([float(w) for w in warm_runs]),
        goal_per_1000=goal,
        meets_goal=None if goal is None else value <= goal,
    )


def latency_rows(samples: Sequence[LatencySample]) -> list[LatencyRow]:
    keys = sorted({(s.suite, s.size) for s in samples if s.codec == "encrypted"})
    return [_latency_row(samples, suite, size) for suite, size in keys]


def _latency_row(samples: Sequence[LatencySample], suite: str, size: int) -> LatencyRow:
    # One plaintext run per size (it has no suite): every suite is set against it.
    enc = {s.run: s for s in samples if (s.codec, s.suite, s.size) == ("encrypted", suite, size)}
    plain = {s.run: s for s in samples if (s.codec, s.size) == ("plaintext", size)}
    runs = sorted(set(enc) & set(plain))
    deltas = [enc[r].p99_ms - plain[r].p99_ms for r in runs]
    delta = _med(deltas)
    row = LatencyRow(
        suite=suite,
        size=size,
        runs=len(runs),
        rate_per_second=_med(enc[r].rate_per_second for r in runs),
        samples_per_run=_med(float(enc[r].count) for r in runs),
        encrypted_p50_ms=_med(enc[r].p50_ms for r in runs),
        encrypted_p99_ms=_med(enc[r].p99_ms for r in runs),
        plaintext_p50_ms=_med(plain[r].p50_ms for r in runs),
        plaintext_p99_ms=_med(plain[r].p99_ms for r in runs),
        p50_ratio=median_or_none(
            paired_ratios([enc[r].p50_ms for r in runs], [plain[r].p50_ms for r in runs])
        ),
        p99_ratio=median_or_none(
            paired_ratios([enc[r].p99_ms for r in runs], [plain[r].p99_ms for r in runs])
        ),
        p99_delta_ms=delta,
        p99_delta_ms_runs=deltas,
        encrypted_to_publish_p50_ms=_med(enc[r].to_publish_p50_ms for r in runs),
        encrypted_publish_to_handler_p50_ms=_med(enc[r].publish_to_handler_p50_ms for r in runs),
        encrypted_to_publish_p99_ms=_med(enc[r].to_publish_p99_ms for r in runs),
        encrypted_publish_to_handler_p99_ms=_med(enc[r].publish_to_handler_p99_ms for r in runs),
        plaintext_to_publish_p50_ms=_med(plain[r].to_publish_p50_ms for r in runs),
        plaintext_to_publish_p99_ms=_med(plain[r].to_publish_p99_ms for r in runs),
        plaintext_publish_to_handler_p99_ms=_med(plain[r].publish_to_handler_p99_ms for r in runs),
        plaintext_publish_to_handler_p50_ms=_med(plain[r].publish_to_handler_p50_ms for r in runs),
        goal_delta_ms=LATENCY_GOAL_MS,
        meets_goal=None,
    )
    if suite != GOAL_SUITE or row.encrypted_publish_to_handler_p99_ms is None:
        return row
    if row.plaintext_publish_to_handler_p99_ms is None:
        return row
    return replace(row, meets_goal=handler_delta(row) <= LATENCY_GOAL_MS)


def bytes_rows(samples: Sequence[Sample]) -> list[BytesRow]:
    consumer = [s for s in samples if s.path == CONSUMER and s.cache]
    return [_bytes_row(consumer, suite, size) for suite, size in _encrypted_keys(consumer, CONSUMER)]


def _bytes_row(consumer: Sequence[Sample], suite: str, size: int) -> BytesRow:
    enc, plain, runs = _paired(consumer, CONSUMER, suite, size)
    enc_value = _med(enc[r].value_bytes or 0.0 for r in runs)
    payload = _med(enc[r].payload_bytes or 0.0 for r in runs)
    plain_value = _med(plain[r].value_bytes or 0.0 for r in runs)
    return BytesRow(
        suite=suite,
        size=size,
        payload_bytes=payload,
        encrypted_value_bytes=enc_value,
        plaintext_value_bytes=plain_value,
        encrypted_record_bytes=_med(enc[r].record_bytes or 0.0 for r in runs),
        plaintext_record_bytes=_med(plain[r].record_bytes or 0.0 for r in runs),
        value_ratio=median_or_none(
            paired_ratios(
                [enc[r].value_bytes or 0.0 for r in runs], [plain[r].value_bytes or 0.0 for r in runs]
            )
        ),
        encryption_overhead_bytes=None
        if enc_value is None or plain_value is None
        else enc_value - plain_value,
        overhead_vs_sealed_bytes=None if enc_value is None or payload is None else enc_value - payload,
    )


def memory_rows(samples: Sequence[MemorySample]) -> list[MemoryRow]:
    return [
        MemoryRow(**asdict(s), vmhwm_mb=s.vmhwm_kb / 1024, vmrss_mb=s.vmrss_kb / 1024)
        for s in sorted(samples, key=lambda m: m.process)
    ]


def accounting(samples: Sequence[Sample]) -> Accounting:
    """Every consumer record reached exactly one outcome (decrypted, denied or dead-lettered)."""
    checked = [s for s in samples if s.path in (CONSUMER, CONSUMER_DENIED, CONSUMER_WORKER)]
    broken = [
        Unaccounted(run=s.run, path=s.path, codec=s.codec, suite=s.suite, size=s.size)
        for s in checked
        if sum(s.outcomes.values()) != s.processed
    ]
    return Accounting(checked=len(checked), all_accounted=not broken, unaccounted=broken)


def _record_us(records_per_second: float | None) -> float | None:
    return 1e6 / records_per_second if records_per_second else None


def _share(part: float, whole: float | None) -> float | None:
    return part / whole if whole else None


def dedupe_summary(cost: DedupeCost, throughput: Sequence[ThroughputRow]) -> DedupeSummary:
    """The window's cost, and its share of each consumer row's per-record time (none if none was measured)."""
    shares = []
    for row in throughput:
        if row.path != CONSUMER:
            continue
        encrypted, plaintext = _record_us(row.encrypted_rps), _record_us(row.plaintext_rps)
        shares.append(
            DedupeShare(
                suite=row.suite,
                size=row.size,
                encrypted_record_us=encrypted,
                encrypted_share=_share(cost.record_us, encrypted),
                plaintext_record_us=plaintext,
                plaintext_share=_share(cost.record_us, plaintext),
            )
        )
    return DedupeSummary(cost=cost, consumer=shares)


def summarize(
    samples: Sequence[Sample],
    latency: Sequence[LatencySample] = (),
    memory: Sequence[MemorySample] = (),
    profiles: Sequence[ProfileSummary] = (),
    *,
    dedupe: DedupeCost | None = None,
    config: RunConfig | None = None,
    machine: Machine | None = None,
    notes: Sequence[str] = (),
) -> BenchResults:
    throughput = throughput_rows(samples)
    kms = kms_rows(samples)
    lat = latency_rows(latency)
    workers = worker_rows(samples)
    return BenchResults(
        config=config or RunConfig(),
        machine=machine or Machine(),
        notes=list(notes),
        goals=goals(throughput, kms, lat, workers),
        throughput=throughput,
        workers=workers,
        fields=fields_rows(samples),
        kms=kms,
        latency=lat,
        bytes=bytes_rows(samples),
        memory=memory_rows(memory),
        profiles=list(profiles),
        dedupe=None if dedupe is None else dedupe_summary(dedupe, throughput),
        accounting=accounting(samples),
        samples=list(samples),
        latency_samples=list(latency),
    )
