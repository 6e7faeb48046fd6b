"""``results.png``: throughput ratios, records/s, latency and bytes per record, one panel each (matplotlib)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from keyfan_tools.bench.goals import THROUGHPUT_GOAL
from keyfan_tools.bench.report.cells import size_label
from keyfan_tools.bench.report.tables import machine_line
from keyfan_tools.bench.results import BenchResults, BytesRow, LatencyRow, ThroughputRow
from keyfan_tools.bench.samples import CONSUMER_DENIED


def _ratios(ax: Any, throughput: list[ThroughputRow]) -> None:
    rows = [r for r in throughput if r.ratio is not None and r.goal is not None]
    labels = [f"{r.path} {r.suite} {size_label(r.size)}" for r in rows]
    ax.barh(
        range(len(rows)),
        [r.ratio for r in rows],
        color=["#4c72b0" if r.meets_goal else "#dd8452" for r in rows],
    )
    ax.axvline(THROUGHPUT_GOAL, color="black", linestyle="--", linewidth=1, label=f"goal {THROUGHPUT_GOAL}x")
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("encrypted / plaintext throughput (median of per-run ratios)")
    ax.set_title("Throughput ratio to the plaintext twin")
    ax.legend(fontsize=7)


def _records_per_second(ax: Any, throughput: list[ThroughputRow]) -> None:
    rows = [r for r in throughput if r.path != CONSUMER_DENIED]
    x = range(len(rows))
    ax.bar([i - 0.2 for i in x], [r.plaintext_rps or 0 for r in rows], width=0.4, label="plaintext")
    ax.bar([i + 0.2 for i in x], [r.encrypted_rps or 0 for r in rows], width=0.4, label="encrypted")
    ax.set_xticks(
        list(x), [f"{r.path}\n{r.suite} {size_label(r.size)}" for r in rows], fontsize=5, rotation=90
    )
    ax.set_yscale("log")
    ax.set_ylabel("records/s (log)")
    ax.set_title("Throughput, records/s")
    ax.legend(fontsize=7)


def _latency(ax: Any, latency: list[LatencyRow]) -> None:
    x = range(len(latency))
    for offset, values, label in (
        (-0.3, [r.plaintext_p50_ms for r in latency], "plaintext p50"),
        (-0.1, [r.encrypted_p50_ms for r in latency], "encrypted p50"),
        (0.1, [r.plaintext_p99_ms for r in latency], "plaintext p99"),
        (0.3, [r.encrypted_p99_ms for r in latency], "encrypted p99"),
    ):
        ax.bar([i + offset for i in x], [v or 0 for v in values], width=0.2, label=label)
    ax.set_xticks(list(x), [f"{r.suite}\n{size_label(r.size)}" for r in latency])
    ax.set_ylabel("ms")
    ax.set_title("End-to-end latency, generator -> handler")
    ax.legend(fontsize=7)


def _bytes(ax: Any, sizes: list[BytesRow]) -> None:
    x = range(len(sizes))
    ax.bar([i - 0.2 for i in x], [r.plaintext_record_bytes or 0 for r in sizes], width=0.4, label="plaintext")
    ax.bar([i + 0.2 for i in x], [r.encrypted_record_bytes or 0 for r in sizes], width=0.4, label="encrypted")
    ax.set_xticks(list(x), [f"{r.suite}\n{size_label(r.size)}" for r in sizes])
    ax.set_yscale("log")
    ax.set_ylabel("bytes per record (key + headers + value, log)")
    ax.set_title("Bytes per record on the topic")
    ax.legend(fontsize=7)


def render_chart(results: BenchResults, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(15, 10))
    _ratios(axes[0][0], results.throughput)
    _records_per_second(axes[0][1], results.throughput)
    _latency(axes[1][0], results.latency)
    _bytes(axes[1][1], results.bytes)
    fig.suptitle(f"Keyfan: encryption vs plaintext ({machine_line(results.machine)})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
