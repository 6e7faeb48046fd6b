"""The results of one benchmark run, typed: what ``summary`` builds from the raw samples and what ``report``, the
CLI and the tests read. Pure data, no I/O.

``BenchResults.as_document()`` is ``results.json`` (its keys are the field names below, in this order);
``BenchResults.from_document()`` reads one back, such as the committed ``bench/results/results.json``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pydantic import TypeAdapter

from keyfan_tools.bench.config import BenchConfig
from keyfan_tools.bench.samples import (
    FIELD_SAMPLE_KEYS,
    DedupeCost,
    LatencySample,
    MemorySample,
    ProfileSummary,
    Sample,
)

RESULTS_SCHEMA = 1


@dataclass(frozen=True)
class RunConfig(BenchConfig):
    """The configuration a run measured with, and how long the whole run took."""

    duration_seconds: float | None = None


@dataclass(frozen=True, kw_only=True)
class Machine:
    """What the results were measured on (``runner.machine_info``); None where it was not recorded."""

    nproc: int | None = None
    cpu_model: str | None = None
    ram_gb: float | None = None
    python: str | None = None
    platform: str | None = None
    load_average_start: tuple[float, ...] | None = None  # 1, 5 and 15 minutes
    load_average_end: tuple[float, ...] | None = None


@dataclass(frozen=True, kw_only=True)
class Goal:
    """One goal, judged on its worst case across sizes and suites."""

    goal: str
    worst: float
    unit: str | None = None  # None for a throughput ratio ("x plaintext"); then not written to results.json
    met: bool
    # For a missed goal: where the difference goes, in figures from the same run (None: not written).
    why: str | None = None

    @property
    def unit_text(self) -> str:
        return "x plaintext" if self.unit is None else self.unit

    def as_document(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in ("unit", "why") or v is not None}


@dataclass(frozen=True, kw_only=True)
class ThroughputRow:
    """One path at one suite and size: records/s encrypted against its plaintext twin, medians over runs."""

    path: str
    title: str
    suite: str
    size: int
    runs: int  # runs in which both codecs were measured
    records_per_run: float | None
    encrypted_rps: float | None
    plaintext_rps: float | None
    ratio: float | None  # the median of the run-by-run ratios, not a ratio of medians
    encrypted_rps_runs: list[float]
    plaintext_rps_runs: list[float]
    ratio_runs: list[float | None]
    baseline: str
    crypto_ms_mean: float | None
    crypto_share: float | None
    plaintext_codec_ms_mean: float | None
    goal: float | None  # None: a path without a throughput goal (the denied consumer)
    meets_goal: bool | None


@dataclass(frozen=True, kw_only=True)
class WorkerRow:
    """The consumer as a real Faust worker at one suite and size, draining a pre-filled topic: the service
    against its plaintext twin and a bare Faust agent, medians over runs, ratios run by run."""

    suite: str
    size: int
    runs: int  # runs in which the service and its twin were both measured
    records_per_run: float | None
    encrypted_rps: float | None  # python -m <reader>_consumer
    plaintext_rps: float | None  # its twin: the same factory and handler, the plaintext decryptor
    bare_rps: float | None  # a bare Faust agent that only counts
    ratio: float | None  # encrypted / plaintext
    plaintext_to_bare: float | None  # twin / bare: what the consumer app costs over the framework
    encrypted_to_bare: float | None
    encrypted_rps_runs: list[float]
    plaintext_rps_runs: list[float]
    bare_rps_runs: list[float]


@dataclass(frozen=True, kw_only=True)
class FieldsRow:
    """Field-level encryption on one path at one size: ``fields`` (personal fields under subject keys, the
    rest under the department key) or ``v2`` (the department key only), against the plaintext twin of the
    same run, with the KMS and subject-key table calls it made. Medians over runs, ratios run by run."""

    path: str
    suite: str
    size: int
    runs: int
    records_per_run: float | None
    subjects_per_run: float | None  # distinct subjects of the measured records
    encrypted_rps: float | None
    plaintext_rps: float | None
    ratio: float | None  # to the plaintext twin
    to_v2: float | None  # fields / v2 on the same path, size and run (None on the v2 row)
    added_ms: float | None  # wall time per record, fields minus v2, run by run (None on the v2 row)
    kms_per_10k: float | None
    key_store_per_10k: float | None  # DynamoDB GetItem, PutItem
    # Time in the subject keys' calls (sealing or opening personal fields, the key table included) per
    # record and as a share of wall time, summed over threads: above 1 where the owner's threads wait on the
    # key table at once. None for a worker (a subprocess, untimed).
    subject_key_ms: float | None
    subject_key_share: float | None
    ratio_runs: list[float | None]
    key_store_calls_runs: list[int]


@dataclass(frozen=True, kw_only=True)
class KmsRow:
    """KMS calls per 1,000 records on one side, data-key cache on or off."""

    side: str
    cache: Literal["on", "off"]
    runs: int
    per_1000: float
    per_1000_runs: list[float]
    calls_runs: list[int]
    records_runs: list[int]
    warmup_calls_runs: list[int]
    warmup_calls: float
    goal_per_1000: float | None
    meets_goal: bool | None


@dataclass(frozen=True, kw_only=True)
class LatencyRow:
    """End-to-end latency (generator send -> handler) at one suite and size, against the plaintext twin."""

    suite: str
    size: int
    runs: int
    rate_per_second: float | None
    samples_per_run: float | None
    encrypted_p50_ms: float | None
    encrypted_p99_ms: float | None
    plaintext_p50_ms: float | None
    plaintext_p99_ms: float | None
    p50_ratio: float | None
    p99_ratio: float | None
    p99_delta_ms: float | None  # the median of the run-by-run differences
    p99_delta_ms_runs: list[float]
    # Where the time goes: generator send -> owner publish, and owner publish -> handler.
    encrypted_to_publish_p50_ms: float | None
    encrypted_publish_to_handler_p50_ms: float | None
    encrypted_to_publish_p99_ms: float | None
    encrypted_publish_to_handler_p99_ms: float | None
    plaintext_to_publish_p50_ms: float | None
    plaintext_to_publish_p99_ms: float | None
    plaintext_publish_to_handler_p99_ms: float | None
    plaintext_publish_to_handler_p50_ms: float | None
    goal_delta_ms: float
    meets_goal: bool | None


@dataclass(frozen=True, kw_only=True)
class BytesRow:
    """Bytes per record on the topic at one suite and size (the consumer's records, medians over runs)."""

    suite: str
    size: int
    payload_bytes: float | None  # the sealed plaintext: the bytes encrypted
    encrypted_value_bytes: float | None
    plaintext_value_bytes: float | None
    encrypted_record_bytes: float | None  # key + headers + value
    plaintext_record_bytes: float | None
    value_ratio: float | None
    encryption_overhead_bytes: float | None  # encrypted value - plaintext value
    overhead_vs_sealed_bytes: float | None  # encrypted value - sealed plaintext


@dataclass(frozen=True, kw_only=True)
class MemoryRow(MemorySample):
    """A process's memory, with its figures in megabytes."""

    vmhwm_mb: float
    vmrss_mb: float


@dataclass(frozen=True, kw_only=True)
class DedupeShare:
    """The dedupe window's per-record time against the consumer's, measured in the same benchmark run."""

    suite: str
    size: int
    encrypted_record_us: float | None  # the consumer path, wall time per record (1e6 / records per second)
    encrypted_share: float | None  # window time / consumer time
    plaintext_record_us: float | None  # its plaintext twin
    plaintext_share: float | None


@dataclass(frozen=True, kw_only=True)
class DedupeSummary:
    cost: DedupeCost
    consumer: list[DedupeShare]


@dataclass(frozen=True, kw_only=True)
class Unaccounted:
    """A consumer measurement whose outcomes do not add up to the records it processed."""

    run: int
    path: str
    codec: str
    suite: str
    size: int


@dataclass(frozen=True, kw_only=True)
class Accounting:
    """Every consumer record reached exactly one outcome (decrypted, denied or dead-lettered)."""

    checked: int
    all_accounted: bool
    unaccounted: list[Unaccounted]


@dataclass(frozen=True, kw_only=True)
class BenchResults:
    """Everything one run measured, summarised: what ``results.json`` holds."""

    schema: int = RESULTS_SCHEMA
    config: RunConfig = field(default_factory=RunConfig)
    machine: Machine = field(default_factory=Machine)
    notes: list[str] = field(default_factory=list)
    goals: list[Goal]
    throughput: list[ThroughputRow]
    # After ``throughput`` in results.json; absent from results written before the worker phase existed.
    workers: list[WorkerRow] = field(default_factory=list)
    # Absent from results written before the field-level suite existed, or by a run without it.
    fields: list[FieldsRow] = field(default_factory=list)
    kms: list[KmsRow]
    latency: list[LatencyRow]
    bytes: list[BytesRow]
    memory: list[MemoryRow]
    profiles: list[ProfileSummary]
    dedupe: DedupeSummary | None
    accounting: Accounting
    samples: list[Sample]
    latency_samples: list[LatencySample]

    def as_document(self) -> dict[str, Any]:
        """The JSON document (``results.json``): plain dicts and lists."""
        document = asdict(self)
        document["goals"] = [goal.as_document() for goal in self.goals]
        if not self.workers:
            # A run without a worker phase (or results from before it) reads and writes back as it was.
            del document["workers"]
            document["config"].pop("worker_records", None)
        if not self.fields:
            del document["fields"]
        samples = document["samples"]
        if not any(sample[key] for sample in samples for key in FIELD_SAMPLE_KEYS):
            for sample in samples:  # figures no sample has (results from before them) stay out
                for key in FIELD_SAMPLE_KEYS:
                    del sample[key]
        return document

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> BenchResults:
        """Results read back from their JSON document (validated, every row typed again)."""
        return TypeAdapter(cls).validate_python(document)
