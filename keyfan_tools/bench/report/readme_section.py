"""The README's "Performance" section, rendered from the results. Pure (results in, text out).

``keyfan bench`` writes it to ``bench/README-performance.md``, and ``keyfan_tools.bench.readme`` copies it
into README.md between its markers.
"""

from __future__ import annotations

from collections.abc import Sequence

from keyfan_tools.bench.report.cells import num, size_label
from keyfan_tools.bench.report.dedupe import dedupe_lines, dedupe_table
from keyfan_tools.bench.report.fields import KMS_SCOPE, fields_section
from keyfan_tools.bench.report.profiles import time_goes_lines
from keyfan_tools.bench.report.tables import (
    bytes_table,
    goals_table,
    kms_table,
    latency_stage_lines,
    latency_table,
    machine_line,
    memory_table,
    throughput_table,
)
from keyfan_tools.bench.report.workers import workers_section
from keyfan_tools.bench.results import BenchResults

CHART_LINK = "bench/results/results.png"
INTRO = (
    "`make bench` measured every figure in this section and wrote it here (from `bench/README-performance.md`). "
    "Encryption costs measured against a plaintext twin of the codec (same pipelines, same broker, same "
    "payloads, same run) on the embedded local stack: Tansu broker and a moto server with IAM on. Suites: "
    "`v2` is wire v2, what the owner writes by default; `signed` and `unsigned` are wire v1 "
    "(`KEYFAN_WIRE=esdk`), one Encryption SDK message per record. The goals are v2's. "
    "Full tables, profiles and the raw samples: `bench/results/results.md` and `bench/results/results.json`."
)
FIELDS_SUITE_TEXT = (
    " `fields` is wire v2 with each event's personal fields sealed apart under its subject's key "
    "(crypto-shredding), what the services run by default."
)


def _reproduce(results: BenchResults) -> list[str]:
    minutes = max(1, round((results.config.duration_seconds or 0) / 60))
    return [
        "### Reproduce",
        "",
        "```bash",
        f"make bench                      # full run, writes bench/results/ (about {minutes} minutes on 2 cores, "
        "plus the venv on a fresh clone)",
        ".venv/bin/keyfan bench --quick  # a tiny run to check the harness",
        ".venv/bin/keyfan bench --runs 5 --sizes 1024 --suites v2 --out /tmp/bench",
        "```",
        "",
    ]


def _loads(values: Sequence[float] | None) -> str:
    return "n/a" if not values else " / ".join(f"{v:.2f}" for v in values)


def _measured_on(results: BenchResults) -> list[str]:
    machine, config = results.machine, results.config
    return [
        "### Measured on",
        "",
        f"- {machine_line(machine)}; {machine.platform}",
        f"- load average (1, 5, 15 min) at start {_loads(machine.load_average_start)}, "
        f"at end {_loads(machine.load_average_end)}",
        f"- {config.runs} runs, payload sizes {config.sizes}, suites {config.suites}, "
        f"took {num(config.duration_seconds)} s",
        *[f"- {note}" for note in results.notes],
    ]


def _intro(results: BenchResults) -> str:
    if not results.fields:
        return INTRO
    first, rest = INTRO.split(" The goals are v2's.", 1)
    return f"{first}{FIELDS_SUITE_TEXT} The goals are v2's.{rest}"


def render_readme_section(results: BenchResults) -> str:
    lines = [
        "## Performance",
        "",
        _intro(results),
        "",
        f"![Benchmark chart]({CHART_LINK})",
        "",
        "### Goals",
        "",
        *goals_table(results.goals),
        "",
        "### Throughput",
        "",
        *throughput_table(results.throughput),
        *workers_section(results.workers, "### The consumer as a Faust worker"),
        *fields_section(
            results.fields,
            f"### Field-level encryption (crypto-shredding), {size_label(results.config.reference_size)}",
            size=results.config.reference_size,
        ),
        "",
        "### KMS calls per 1,000 records",
        "",
        *([KMS_SCOPE, ""] if results.fields else []),
        *kms_table(results.kms),
        "",
        "### End-to-end latency",
        "",
        *latency_table(results.latency),
        "",
        *latency_stage_lines(results.latency),
        "",
        "### Bytes per record",
        "",
        *bytes_table(results.bytes),
    ]
    if results.memory:
        lines += ["", "### Peak resident memory", "", *memory_table(results.memory)]
    if results.dedupe:
        lines += [
            "",
            "### Deduplication window",
            "",
            *dedupe_table(results.dedupe),
            "",
            *dedupe_lines(results.dedupe),
        ]
    if results.profiles:
        lines += [
            "",
            "### Where the time goes",
            "",
            "cProfile across the event loop and the worker threads (wall time per thread), encrypted paths:",
            "",
            *time_goes_lines(results.profiles),
        ]
    lines += ["", *_measured_on(results), "", *_reproduce(results)]
    return "\n".join(lines)
