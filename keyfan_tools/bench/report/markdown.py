"""``results.md``: every table of a run, with its notes, profiles and accounting. Pure (results in, text out)."""

from __future__ import annotations

from keyfan_tools.bench.report.cells import num
from keyfan_tools.bench.report.dedupe import dedupe_lines, dedupe_shares_table, dedupe_table
from keyfan_tools.bench.report.fields import KMS_SCOPE, fields_section
from keyfan_tools.bench.report.profiles import profiles_section
from keyfan_tools.bench.report.tables import (
    bytes_table,
    goals_table,
    kms_table,
    latency_split_table,
    latency_stage_lines,
    latency_table,
    machine_line,
    memory_table,
    throughput_table,
)
from keyfan_tools.bench.report.workers import workers_section
from keyfan_tools.bench.results import BenchResults


def render_markdown(results: BenchResults) -> str:
    config = results.config
    lines = [
        "# Keyfan benchmark: the cost of encryption against a plaintext baseline",
        "",
        f"Machine: {machine_line(results.machine)}. Runs: {config.runs} (each figure is the median over runs; "
        "each ratio is the median of run-by-run ratios to the plaintext twin measured in the same run). "
        f"Duration: {num(config.duration_seconds)} s.",
        "",
    ]
    lines += [f"- {note}" for note in results.notes]
    lines += ["", "## Goals", "", *goals_table(results.goals)]
    lines += ["", "## Throughput", "", *throughput_table(results.throughput)]
    lines += workers_section(results.workers, "## The consumer as a Faust worker (drain)")
    lines += fields_section(results.fields, "## Field-level encryption (crypto-shredding)")
    lines += ["", "## KMS calls per 1,000 records", ""]
    lines += [KMS_SCOPE, ""] if results.fields else []
    lines += kms_table(results.kms)
    lines += [
        "",
        "## End-to-end latency (generator send -> consumer handler)",
        "",
        *latency_table(results.latency),
    ]
    lines += ["", "Where the latency goes (medians over runs):", "", *latency_split_table(results.latency)]
    lines += ["", "The consumer stage alone:", "", *latency_stage_lines(results.latency)]
    lines += ["", "## Bytes per record on the topic", "", *bytes_table(results.bytes)]
    if results.memory:
        lines += ["", "## Peak resident memory (real service processes)", "", *memory_table(results.memory)]
    if results.dedupe:
        dedupe = results.dedupe
        lines += ["", "## Deduplication window", "", *dedupe_table(dedupe), "", *dedupe_lines(dedupe)]
        if dedupe.consumer:
            lines += ["", "Against the consumer's wall time per record, same run:", ""]
            lines += dedupe_shares_table(dedupe)
    if results.profiles:
        lines += ["", "## Where the time goes (cProfile, top functions by own time)", ""]
        lines += profiles_section(results.profiles)
    accounting = results.accounting
    lines += [
        "",
        f"Accounting: {accounting.checked} consumer measurements, every record reached exactly one "
        f"outcome: {'yes' if accounting.all_accounted else 'NO'}.",
        "",
    ]
    return "\n".join(lines)
