"""The measurement tables: goals, throughput, KMS calls, latency, bytes, memory; and the machine line. Pure."""

from __future__ import annotations

from collections.abc import Sequence

from keyfan_tools.bench.goals import KMS_GOAL_PER_1000, LATENCY_GOAL_MS, THROUGHPUT_GOAL
from keyfan_tools.bench.report.cells import met_text, num, ratio_text, size_label, table
from keyfan_tools.bench.results import (
    BytesRow,
    Goal,
    KmsRow,
    LatencyRow,
    Machine,
    MemoryRow,
    ThroughputRow,
)
from keyfan_tools.bench.samples import PATH_TITLES


def machine_line(machine: Machine) -> str:
    return f"{machine.nproc} CPUs ({machine.cpu_model}), {machine.ram_gb} GB RAM, Python {machine.python}"


def goals_table(goals: Sequence[Goal]) -> list[str]:
    rows = [[goal.goal, f"{goal.worst:.2f} {goal.unit_text}", met_text(goal.met)] for goal in goals]
    missed = [f"- **{goal.goal}**, missed: {goal.why}" for goal in goals if not goal.met and goal.why]
    return table(["Goal", "Worst case measured", "Met"], rows) + (["", *missed] if missed else [])


def throughput_table(throughput: Sequence[ThroughputRow]) -> list[str]:
    rows = [
        [
            PATH_TITLES.get(r.path, r.path),
            r.suite,
            size_label(r.size),
            num(r.encrypted_rps),
            num(r.plaintext_rps),
            ratio_text(r.ratio),
            num(r.crypto_ms_mean, 2),
            met_text(r.meets_goal),
        ]
        for r in throughput
    ]
    return table(
        [
            "Path",
            "Suite",
            "Payload",
            "Encrypted rec/s",
            "Plaintext rec/s",
            "Ratio",
            "Crypto ms/rec",
            f"Goal: v2 >= {THROUGHPUT_GOAL}x",
        ],
        rows,
    )


def kms_table(kms: Sequence[KmsRow]) -> list[str]:
    rows = [
        [
            r.side,
            r.cache,
            num(r.per_1000, 2),
            num(r.warmup_calls, 0),
            f"{sum(r.records_runs) // max(1, r.runs):,}",
            met_text(r.meets_goal),
        ]
        for r in kms
    ]
    return table(
        [
            "Side",
            "Data-key cache",
            "KMS calls / 1,000 (steady)",
            "Warm-up calls",
            "Records/run",
            f"<= {KMS_GOAL_PER_1000}",
        ],
        rows,
    )


def latency_table(latency: Sequence[LatencyRow]) -> list[str]:
    rows = [
        [
            r.suite,
            size_label(r.size),
            num(r.rate_per_second),
            num(r.encrypted_p50_ms, 1),
            num(r.encrypted_p99_ms, 1),
            num(r.plaintext_p50_ms, 1),
            num(r.plaintext_p99_ms, 1),
            num(r.p99_delta_ms, 1),
            num(r.encrypted_publish_to_handler_p99_ms, 1),
            num(r.plaintext_publish_to_handler_p99_ms, 1),
            met_text(r.meets_goal),
        ]
        for r in latency
    ]
    return table(
        [
            "Suite",
            "Payload",
            "Rate rec/s",
            "Enc p50 ms",
            "Enc p99 ms",
            "Plain p50 ms",
            "Plain p99 ms",
            "p99 delta ms",
            "Enc p99 publish->handler ms",
            "Plain p99 publish->handler ms",
            f"Goal: v2 publish->handler <= +{LATENCY_GOAL_MS:g} ms",
        ],
        rows,
    )


def _p50_p99(p50: float | None, p99: float | None) -> str:
    return f"{num(p50, 1)} / {num(p99, 1)}"


def latency_split_table(latency: Sequence[LatencyRow]) -> list[str]:
    """Where the latency goes: generator send -> owner publish (SQS, owner, encrypt) and publish -> handler."""
    rows = [
        [
            r.suite,
            _p50_p99(r.encrypted_to_publish_p50_ms, r.encrypted_to_publish_p99_ms),
            _p50_p99(r.plaintext_to_publish_p50_ms, r.plaintext_to_publish_p99_ms),
            _p50_p99(r.encrypted_publish_to_handler_p50_ms, r.encrypted_publish_to_handler_p99_ms),
            _p50_p99(r.plaintext_publish_to_handler_p50_ms, r.plaintext_publish_to_handler_p99_ms),
        ]
        for r in latency
    ]
    return table(
        [
            "Suite",
            "Enc send->publish p50/p99 ms",
            "Plain send->publish p50/p99 ms",
            "Enc publish->handler p50/p99 ms",
            "Plain publish->handler p50/p99 ms",
        ],
        rows,
    )


def latency_stage_lines(latency: Sequence[LatencyRow]) -> list[str]:
    """The consumer stage alone (publish -> handler), where SQS and owner jitter do not reach."""
    lines = []
    for r in latency:
        enc, plain = r.encrypted_publish_to_handler_p99_ms, r.plaintext_publish_to_handler_p99_ms
        if enc is None or plain is None:
            continue
        lines.append(
            f"- {r.suite} {size_label(r.size)}: publish -> handler p99 {enc:.1f} ms encrypted vs "
            f"{plain:.1f} ms plaintext ({enc - plain:+.1f} ms); p50 "
            f"{num(r.encrypted_publish_to_handler_p50_ms, 1)} vs "
            f"{num(r.plaintext_publish_to_handler_p50_ms, 1)} ms."
        )
    return lines


def bytes_table(sizes: Sequence[BytesRow]) -> list[str]:
    rows = [
        [
            r.suite,
            size_label(r.size),
            num(r.payload_bytes),
            num(r.encrypted_value_bytes),
            num(r.plaintext_value_bytes),
            num(r.encryption_overhead_bytes),
            num(r.overhead_vs_sealed_bytes),
            num(r.encrypted_record_bytes),
            num(r.plaintext_record_bytes),
        ]
        for r in sizes
    ]
    return table(
        [
            "Suite",
            "Payload",
            "Sealed plaintext B",
            "Encrypted value B",
            "Plaintext value B",
            "Enc - plain value B",
            "Enc - sealed B",
            "Encrypted record B",
            "Plaintext record B",
        ],
        rows,
    )


def memory_table(memory: Sequence[MemoryRow]) -> list[str]:
    rows = [
        [
            r.process,
            num(r.vmhwm_mb, 1),
            num(r.vmrss_mb, 1),
            f"{r.records:,}",
            "n/a" if r.kms_calls is None else str(r.kms_calls),
        ]
        for r in memory
    ]
    return table(["Process", "Peak RSS (VmHWM) MB", "RSS at end MB", "Records", "KMS calls"], rows)
