"""The raw measurements one benchmark run produces, as plain data (what ``summary`` turns into results)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

# Paths, as named in the results.
OWNER_PIPELINE = "owner_pipeline"  # owner pipeline on already-received messages: validate, encrypt, publish
OWNER_SQS = "owner_sqs"  # SQS -> owner -> topic (the whole owner path)
CONSUMER = "consumer"  # topic -> sales consumer: decrypt, checks, handler, audit
CONSUMER_DENIED = "consumer_denied"  # topic -> sales consumer, records under finance's key: access denied
# The consumer as a real Faust worker (a subprocess): python -m sales_consumer, or its plaintext twin.
CONSUMER_WORKER = "consumer_worker"
# A bare Faust agent that only counts the records (the framework's ceiling); it has no suite.
FAUST_BARE = "faust_bare"
BARE_SUITE = "n/a"
# The field-level suite (crypto-shredding): wire v2 with personal fields sealed under subject keys.
FIELDS_SUITE: Final = "fields"
PATHS = (OWNER_PIPELINE, OWNER_SQS, CONSUMER, CONSUMER_DENIED, CONSUMER_WORKER)
PATH_TITLES = {
    OWNER_PIPELINE: "owner pipeline (no SQS)",
    OWNER_SQS: "owner path (SQS -> topic)",
    CONSUMER: "consumer (decrypt + handler)",
    CONSUMER_DENIED: "consumer, access denied",
    CONSUMER_WORKER: "consumer Faust worker (drain)",
    FAUST_BARE: "bare Faust agent (drain)",
}


@dataclass(frozen=True)
class Sample:
    """One path measured once, with one codec."""

    run: int
    path: str
    codec: str
    suite: str
    size: int
    records: int
    seconds: float
    records_per_second: float
    kms_calls: int = 0
    warmup_kms_calls: int = 0
    crypto_ms_mean: float = 0.0
    crypto_share: float = 0.0
    cache: bool = True
    value_bytes: float | None = None
    record_bytes: float | None = None
    payload_bytes: float | None = None
    outcomes: dict[str, int] = field(default_factory=dict)
    processed: int = 0
    # The field-level suite (0 for the others): subject-key table calls in the measured window and in the
    # warm-up, distinct subjects of the measured records, time sealing or opening personal fields.
    key_store_calls: int = 0
    warmup_key_store_calls: int = 0
    subjects: int = 0
    subject_key_ms: float = 0.0  # per measured record
    subject_key_share: float = 0.0  # of wall time (summed over threads)


# What the samples of a run without the field-level suite leave out of results.json (as written before it).
FIELD_SAMPLE_KEYS = (
    "key_store_calls",
    "warmup_key_store_calls",
    "subjects",
    "subject_key_ms",
    "subject_key_share",
)


@dataclass(frozen=True)
class LatencySample:
    """End-to-end latency of one paced run: generator send -> handler, in milliseconds."""

    run: int
    codec: str
    suite: str
    size: int
    rate_per_second: float
    count: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    # Where the time goes: generator send -> owner publish (from the record's produced-at header), and
    # owner publish -> handler.
    to_publish_p50_ms: float
    publish_to_handler_p50_ms: float
    to_publish_p99_ms: float = 0.0
    publish_to_handler_p99_ms: float = 0.0


@dataclass(frozen=True)
class MemorySample:
    """Peak resident memory (VmHWM) of one real service process after a run."""

    process: str
    pid: int
    vmhwm_kb: int
    vmrss_kb: int
    records: int
    kms_calls: int | None
    outcomes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass(frozen=True)
class ProfileEntry:
    function: str
    calls: int
    tottime_s: float
    cumtime_s: float


@dataclass(frozen=True)
class ProfileSummary:
    path: str
    codec: str
    suite: str
    size: int
    records: int
    wall_seconds: float
    profiled_seconds: float
    top_own: list[ProfileEntry]
    top_cumulative: list[ProfileEntry]
    groups: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class DedupeCost:
    """The consumer's deduplication window (``keyfan.consumer.dedupe.EventWindow``), full, at steady state:
    one department, a plain dict store (``keyfan_tools.bench.dedupe``)."""

    window_events: int  # the setting: event ids remembered per department
    partitions: int  # the department's partitions, over which the window is split
    capacity_per_partition: int
    window_ids: int  # ids the full window held
    steady_records: int  # records timed per run, each one evicting the oldest id of its partition
    runs: int
    evicted: int
    record_us: float  # first_seen + remember (with its eviction) per record, median over runs
    record_us_runs: list[float]
    memory_bytes: int  # tracemalloc: what the full window holds (entries, eviction order, the ids)
    memory_mb: float
    memory_bytes_per_id: float
    changelog_entry_bytes: float  # JSON key + value of one event:<id> -> [partition, offset] entry
    changelog_tombstone_bytes: float  # JSON key of the evicted id (null value)
    changelog_bytes_per_record: float  # entry + tombstone: what each applied record adds at steady state
    rebuild_ms: float  # invalidate() then the next remember: the eviction order rebuilt from the store
    rebuild_ms_runs: list[float]
