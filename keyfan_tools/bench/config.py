"""What one benchmark run measures, and how much of it: the ``keyfan bench`` options as one frozen object."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from keyfan.settings import ConsumerSettings
from keyfan_tools.bench.context import SUITES, Suite


@dataclass(frozen=True)
class BenchConfig:
    runs: int = 3
    sizes: tuple[int, ...] = (256, 1024, 16384)
    # Wire v2 (whose goals the report checks; first: the profile and cache-off phases use it), wire v2 with
    # personal fields under subject keys (what the services run), then wire v1's two suites for comparison.
    suites: tuple[Suite, ...] = SUITES
    warmup: int = 20
    pipeline_records: int = 1500
    sqs_records: int = 150
    cache_off_records: int = 60
    latency_records: int = 200
    latency_rate: float = 25.0
    memory_records: int = 600
    profile_records: int = 300
    # The worker phase: records of the reader department each Faust worker drains (0: no worker phase).
    worker_records: int = 5000
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
            worker_records=200,
            dedupe_runs=3,
            quick=True,
        )

    def with_overrides(self, **changes: Any) -> BenchConfig:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    @property
    def reference_size(self) -> int:
        """The one payload size of the latency and profile phases: 1 KB, or the first size measured."""
        return 1024 if 1024 in self.sizes else self.sizes[0]
