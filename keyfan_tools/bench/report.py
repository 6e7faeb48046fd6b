"""Writers for the results: ``results.json``, ``results.md`` (Markdown tables), ``results.png`` (chart),
and the README "Performance" section. Rendering is pure (string in, string out); only ``write_*`` touch files.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from keyfan_tools.bench.samples import PATH_TITLES

RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
RESULTS_PNG = "results.png"
CHART_LINK = "bench/results/results.png"


def size_label(size: int) -> str:
    if size >= 1024 and size % 1024 == 0:
        return f"{size // 1024} KB"
    return f"{size} B"


def num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def ratio_text(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def met_text(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "**no**")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def goals_table(results: dict[str, Any]) -> list[str]:
    rows = []
    for goal in results["goals"]:
        unit = goal.get("unit", "x plaintext")
        rows.append([goal["goal"], f"{goal['worst']:.2f} {unit}", met_text(goal["met"])])
    return _table(["Goal", "Worst case measured", "Met"], rows)


def throughput_table(results: dict[str, Any]) -> list[str]:
    rows = [
        [
            PATH_TITLES.get(r["path"], r["path"]),
            r["suite"],
            size_label(r["size"]),
            num(r["encrypted_rps"]),
            num(r["plaintext_rps"]),
            ratio_text(r["ratio"]),
            num(r["crypto_ms_mean"], 2),
            met_text(r["meets_goal"]),
        ]
        for r in results["throughput"]
    ]
    return _table(
        [
            "Path",
            "Suite",
            "Payload",
            "Encrypted rec/s",
            "Plaintext rec/s",
            "Ratio",
            "Crypto ms/rec",
            ">= 0.9x",
        ],
        rows,
    )


def kms_table(results: dict[str, Any]) -> list[str]:
    rows = [
        [
            r["side"],
            r["cache"],
            num(r["per_1000"], 2),
            num(r["warmup_calls"], 0),
            f"{sum(r['records_runs']) // max(1, r['runs']):,}",
            met_text(r["meets_goal"]),
        ]
        for r in results["kms"]
    ]
    return _table(
        ["Side", "Data-key cache", "KMS calls / 1,000 (steady)", "Warm-up calls", "Records/run", "<= 0.1"],
        rows,
    )


def latency_table(results: dict[str, Any]) -> list[str]:
    rows = [
        [
            r["suite"],
            size_label(r["size"]),
            num(r["rate_per_second"]),
            num(r["encrypted_p50_ms"], 1),
            num(r["encrypted_p99_ms"], 1),
            num(r["plaintext_p50_ms"], 1),
            num(r["plaintext_p99_ms"], 1),
            num(r["p99_delta_ms"], 1),
            met_text(r["meets_goal"]),
        ]
        for r in results["latency"]
    ]
    return _table(
        [
            "Suite",
            "Payload",
            "Rate rec/s",
            "Enc p50 ms",
            "Enc p99 ms",
            "Plain p50 ms",
            "Plain p99 ms",
            "p99 delta ms",
            "<= +5 ms",
        ],
        rows,
    )


def latency_split_table(results: dict[str, Any]) -> list[str]:
    """Where the latency goes: generator send -> owner publish (SQS, owner, encrypt) and publish -> handler."""
    rows = []
    for r in results["latency"]:
        rows.append(
            [
                r["suite"],
                f"{num(r.get('encrypted_to_publish_p50_ms'), 1)} / {num(r.get('encrypted_to_publish_p99_ms'), 1)}",
                f"{num(r.get('plaintext_to_publish_p50_ms'), 1)} / {num(r.get('plaintext_to_publish_p99_ms'), 1)}",
                f"{num(r.get('encrypted_publish_to_handler_p50_ms'), 1)} / "
                f"{num(r.get('encrypted_publish_to_handler_p99_ms'), 1)}",
                f"{num(r.get('plaintext_publish_to_handler_p50_ms'), 1)} / "
                f"{num(r.get('plaintext_publish_to_handler_p99_ms'), 1)}",
            ]
        )
    return _table(
        [
            "Suite",
            "Enc send->publish p50/p99 ms",
            "Plain send->publish p50/p99 ms",
            "Enc publish->handler p50/p99 ms",
            "Plain publish->handler p50/p99 ms",
        ],
        rows,
    )


def latency_stage_lines(results: dict[str, Any]) -> list[str]:
    """The consumer stage alone (publish -> handler), where SQS and owner jitter do not reach."""
    lines = []
    for r in results["latency"]:
        enc, plain = (
            r.get("encrypted_publish_to_handler_p99_ms"),
            r.get("plaintext_publish_to_handler_p99_ms"),
        )
        if enc is None or plain is None:
            continue
        lines.append(
            f"- {r['suite']} {size_label(r['size'])}: publish -> handler p99 {enc:.1f} ms encrypted vs "
            f"{plain:.1f} ms plaintext ({enc - plain:+.1f} ms); p50 "
            f"{num(r.get('encrypted_publish_to_handler_p50_ms'), 1)} vs "
            f"{num(r.get('plaintext_publish_to_handler_p50_ms'), 1)} ms."
        )
    return lines


def _short(function: str) -> str:
    for prefix in ("<method '", "<built-in method "):
        if function.startswith(prefix):
            name = function.removeprefix(prefix).split("'")[0].split(">")[0]
            owner = (
                function.split(" of '")[-1].split("'")[0].rsplit(".", 1)[-1] if " of '" in function else ""
            )
            return f"{owner}.{name}" if owner else name
    return function.rsplit("(", 1)[-1].rstrip(")") if "(" in function else function


def time_goes_lines(results: dict[str, Any], groups: int = 3, functions: int = 3) -> list[str]:
    """One line per encrypted profile: the biggest shares of thread time and the top functions."""
    lines = []
    for p in results.get("profiles", []):
        if p["codec"] != "encrypted":
            continue
        shares = ", ".join(f"{name} {share:.0%}" for name, share in list(p["groups"].items())[:groups])
        top = ", ".join(
            f"{_short(e['function'])} {1000 * e['tottime_s'] / max(1, e['calls']):.2f} ms/call x {e['calls']:,}"
            for e in [e for e in p["top_own"] if "poll" not in e["function"]][:functions]
        )
        lines.append(
            f"- {PATH_TITLES.get(p['path'], p['path'])} ({p['suite']} {size_label(p['size'])}): {shares}; "
            f"top functions by own time: {top}."
        )
    return lines


def bytes_table(results: dict[str, Any]) -> list[str]:
    rows = [
        [
            r["suite"],
            size_label(r["size"]),
            num(r["payload_bytes"]),
            num(r["encrypted_value_bytes"]),
            num(r["plaintext_value_bytes"]),
            num(r["encryption_overhead_bytes"]),
            num(r.get("overhead_vs_sealed_bytes")),
            num(r["encrypted_record_bytes"]),
            num(r["plaintext_record_bytes"]),
        ]
        for r in results["bytes"]
    ]
    return _table(
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


def memory_table(results: dict[str, Any]) -> list[str]:
    rows = [
        [
            r["process"],
            num(r["vmhwm_mb"], 1),
            num(r["vmrss_mb"], 1),
            f"{r['records']:,}",
            "n/a" if r["kms_calls"] is None else str(r["kms_calls"]),
        ]
        for r in results["memory"]
    ]
    return _table(["Process", "Peak RSS (VmHWM) MB", "RSS at end MB", "Records", "KMS calls"], rows)


def _percent_number(value: float) -> str:
    return f"{100 * value:.2f}" if value < 0.01 else f"{100 * value:.1f}"


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{_percent_number(value)} %"


def _share_text(shares: Sequence[dict[str, Any]]) -> str | None:
    """The window's share of the consumer's per-record time, across the suites and sizes measured."""
    encrypted = [s["encrypted_share"] for s in shares if s["encrypted_share"] is not None]
    plaintext = [s["plaintext_share"] for s in shares if s["plaintext_share"] is not None]
    if not encrypted and not plaintext:
        return None
    parts = []
    if encrypted:
        low, high = min(encrypted), max(encrypted)
        span = _percent(high) if low == high else f"{_percent_number(low)}-{_percent(high)}"
        parts.append(f"{span} of the encrypted consumer")
    if plaintext:
        parts.append(f"at most {_percent(max(plaintext))} of its plaintext twin")
    return ", ".join(parts)


def dedupe_table(results: dict[str, Any]) -> list[str]:
    """The dedupe window's figures (``keyfan_tools.bench.dedupe``), with its share of the consumer's time."""
    dedupe = results["dedupe"]
    cost = dedupe["cost"]
    rows = [
        [
            "Window",
            f"{cost['window_events']:,} event ids per department ({cost['partitions']} partitions x "
            f"{cost['capacity_per_partition']:,})",
        ],
        [
            "`first_seen` + `remember`, evicting the oldest id",
            f"{cost['record_us']:.2f} µs per record (median of {cost['runs']} runs x "
            f"{cost['steady_records']:,} records)",
        ],
    ]
    share = _share_text(dedupe["consumer"])
    if share is not None:
        rows.append(["Share of the consumer's time per record (same run)", share])
    rows += [
        [
            "Memory a full window holds (dict store, tracemalloc)",
            f"{cost['memory_mb']:.1f} MB for {cost['window_ids']:,} ids "
            f"({cost['memory_bytes_per_id']:.0f} B per id)",
        ],
        [
            "Changelog bytes per applied record (JSON key + value)",
            f"{cost['changelog_bytes_per_record']:.0f} B: entry {cost['changelog_entry_bytes']:.0f} B "
            f"+ tombstone of the evicted id {cost['changelog_tombstone_bytes']:.0f} B",
        ],
        [
            "Eviction order rebuilt after a rebalance",
            f"{cost['rebuild_ms']:.0f} ms for a full window (median of {cost['runs']} runs)",
        ],
    ]
    return _table(["Deduplication window", "Cost"], rows)


def dedupe_lines(results: dict[str, Any]) -> list[str]:
    cost = results["dedupe"]["cost"]
    return [
        f"The window bounds deduplication: an event published again more than {cost['window_events']:,} events "
        "later in its department is not recognised as a duplicate (the window is split evenly over the "
        f"department's {cost['partitions']} partitions, so under skewed traffic the bound is "
        f"{cost['capacity_per_partition']:,} events in the event's partition).",
        "",
        "Measured on `keyfan.consumer.dedupe.EventWindow` in a plain dict store; a Faust Table also produces "
        "the changelog records (sized above, their produce time not included), and after a rebalance reads "
        "the table back to rebuild the order.",
    ]


def dedupe_shares_table(results: dict[str, Any]) -> list[str]:
    rows = [
        [
            s["suite"],
            size_label(s["size"]),
            num(s["encrypted_record_us"], 0),
            _percent(s["encrypted_share"]),
            num(s["plaintext_record_us"], 0),
            _percent(s["plaintext_share"]),
        ]
        for s in results["dedupe"]["consumer"]
    ]
    return _table(
        [
            "Suite",
            "Payload",
            "Encrypted consumer µs/rec",
            "Window share",
            "Plaintext consumer µs/rec",
            "Window share",
        ],
        rows,
    )


def profiles_section(results: dict[str, Any], top: int = 8) -> list[str]:
    lines: list[str] = []
    for p in results["profiles"]:
        lines.append(
            f"**{PATH_TITLES.get(p['path'], p['path'])}, {p['codec']} {p['suite']} {size_label(p['size'])}** "
            f"({p['records']:,} records, {p['wall_seconds']:.1f} s wall, "
            f"{p['profiled_seconds']:.1f} s profiled across threads)"
        )
        if p.get("groups"):
            shares = ", ".join(f"{name} {share:.0%}" for name, share in p["groups"].items())
            lines.append(f"\nShare of profiled thread time: {shares}.\n")
        rows = [
            [f"`{e['function']}`", f"{e['calls']:,}", f"{e['tottime_s']:.3f}", f"{e['cumtime_s']:.3f}"]
            for e in p["top_own"][:top]
        ]
        lines += _table(["Function (own time)", "Calls", "Own s", "Cumulative s"], rows)
        lines.append("")
    return lines


def render_markdown(results: dict[str, Any]) -> str:
    machine, config = results.get("machine", {}), results.get("config", {})
    lines = [
        "# Keyfan benchmark: the cost of encryption against a plaintext baseline",
        "",
        f"Machine: {machine_line(machine)}. Runs: {config.get('runs')} (each figure is the median over runs; "
        "each ratio is the median of run-by-run ratios to the plaintext twin measured in the same run). "
        f"Duration: {num(config.get('duration_seconds'))} s.",
        "",
    ]
    lines += [f"- {note}" for note in results.get("notes", [])]
    lines += ["", "## Goals", "", *goals_table(results)]
    lines += ["", "## Throughput", "", *throughput_table(results)]
    lines += ["", "## KMS calls per 1,000 records", "", *kms_table(results)]
    lines += ["", "## End-to-end latency (generator send -> consumer handler)", "", *latency_table(results)]
    lines += ["", "Where the latency goes (medians over runs):", "", *latency_split_table(results)]
    lines += ["", "The consumer stage alone:", "", *latency_stage_lines(results)]
    lines += ["", "## Bytes per record on the topic", "", *bytes_table(results)]
    if results.get("memory"):
        lines += ["", "## Peak resident memory (real service processes)", "", *memory_table(results)]
    if results.get("dedupe"):
        lines += ["", "## Deduplication window", "", *dedupe_table(results), "", *dedupe_lines(results)]
        if results["dedupe"]["consumer"]:
            lines += ["", "Against the consumer's wall time per record, same run:", ""]
            lines += dedupe_shares_table(results)
    if results.get("profiles"):
        lines += ["", "## Where the time goes (cProfile, top functions by own time)", ""]
        lines += profiles_section(results)
    accounting = results.get("accounting", {})
    lines += [
        "",
        f"Accounting: {accounting.get('checked', 0)} consumer measurements, every record reached exactly one "
        f"outcome: {'yes' if accounting.get('all_accounted') else 'NO'}.",
        "",
    ]
    return "\n".join(lines)


def machine_line(machine: dict[str, Any]) -> str:
    return (
        f"{machine.get('nproc')} CPUs ({machine.get('cpu_model')}), {machine.get('ram_gb')} GB RAM, "
        f"Python {machine.get('python')}"
    )


def _loads(values: Sequence[float] | None) -> str:
    return "n/a" if not values else " / ".join(f"{v:.2f}" for v in values)


def render_readme_section(results: dict[str, Any]) -> str:
    """The README's "Performance" section (``keyfan bench`` writes it into README.md, ``keyfan_tools.bench.readme``)."""
    machine, config = results.get("machine", {}), results.get("config", {})
    lines = [
        "## Performance",
        "",
        "`make bench` measured every figure in this section and wrote it here (from `bench/README-performance.md`). "
        "Encryption costs measured against a plaintext twin of the codec (same pipelines, same broker, same "
        "payloads, same run) on the embedded local stack: Tansu broker and a moto server with IAM on. "
        "Full tables, profiles and the raw samples: `bench/results/results.md` and `bench/results/results.json`.",
        "",
        f"![Benchmark chart]({CHART_LINK})",
        "",
        "### Goals",
        "",
        *goals_table(results),
        "",
        "### Throughput",
        "",
        *throughput_table(results),
        "",
        "### KMS calls per 1,000 records",
        "",
        *kms_table(results),
        "",
        "### End-to-end latency",
        "",
        *latency_table(results),
        "",
        *latency_stage_lines(results),
        "",
        "### Bytes per record",
        "",
        *bytes_table(results),
    ]
    if results.get("memory"):
        lines += ["", "### Peak resident memory", "", *memory_table(results)]
    if results.get("dedupe"):
        lines += ["", "### Deduplication window", "", *dedupe_table(results), "", *dedupe_lines(results)]
    if results.get("profiles"):
        lines += [
            "",
            "### Where the time goes",
            "",
            "cProfile across the event loop and the worker threads (wall time per thread), encrypted paths:",
            "",
            *time_goes_lines(results),
        ]
    lines += [
        "",
        "### Measured on",
        "",
        f"- {machine_line(machine)}; {machine.get('platform')}",
        f"- load average (1, 5, 15 min) at start {_loads(machine.get('load_average_start'))}, "
        f"at end {_loads(machine.get('load_average_end'))}",
        f"- {config.get('runs')} runs, payload sizes {config.get('sizes')}, suites {config.get('suites')}, "
        f"took {num(config.get('duration_seconds'))} s",
        *[f"- {note}" for note in results.get("notes", [])],
        "",
        "### Reproduce",
        "",
        "```bash",
        "make bench                      # full run, writes bench/results/ (about 8 minutes on 2 cores, plus the venv on a fresh clone)",
        ".venv/bin/keyfan bench --quick  # a tiny run to check the harness",
        ".venv/bin/keyfan bench --runs 5 --sizes 1024 --out /tmp/bench",
        "```",
        "",
    ]
    return "\n".join(lines)


def render_chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(15, 10))
    ax = axes[0][0]
    rows = [r for r in results["throughput"] if r["ratio"] is not None and r["goal"] is not None]
    labels = [f"{r['path']} {r['suite']} {size_label(r['size'])}" for r in rows]
    ax.barh(
        range(len(rows)),
        [r["ratio"] for r in rows],
        color=["#4c72b0" if r["meets_goal"] else "#dd8452" for r in rows],
    )
    ax.axvline(0.9, color="black", linestyle="--", linewidth=1, label="goal 0.9x")
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("encrypted / plaintext throughput (median of per-run ratios)")
    ax.set_title("Throughput ratio to the plaintext twin")
    ax.legend(fontsize=7)

    ax = axes[0][1]
    rows = [r for r in results["throughput"] if r["path"] != "consumer_denied"]
    x = range(len(rows))
    ax.bar([i - 0.2 for i in x], [r["plaintext_rps"] or 0 for r in rows], width=0.4, label="plaintext")
    ax.bar([i + 0.2 for i in x], [r["encrypted_rps"] or 0 for r in rows], width=0.4, label="encrypted")
    ax.set_xticks(
        list(x), [f"{r['path']}\n{r['suite']} {size_label(r['size'])}" for r in rows], fontsize=5, rotation=90
    )
    ax.set_yscale("log")
    ax.set_ylabel("records/s (log)")
    ax.set_title("Throughput, records/s")
    ax.legend(fontsize=7)

    ax = axes[1][0]
    lat = results["latency"]
    x = range(len(lat))
    for offset, key, label in (
        (-0.3, "plaintext_p50_ms", "plaintext p50"),
        (-0.1, "encrypted_p50_ms", "encrypted p50"),
        (0.1, "plaintext_p99_ms", "plaintext p99"),
        (0.3, "encrypted_p99_ms", "encrypted p99"),
    ):
        ax.bar([i + offset for i in x], [r[key] or 0 for r in lat], width=0.2, label=label)
    ax.set_xticks(list(x), [f"{r['suite']}\n{size_label(r['size'])}" for r in lat])
    ax.set_ylabel("ms")
    ax.set_title("End-to-end latency, generator -> handler")
    ax.legend(fontsize=7)

    ax = axes[1][1]
    data = results["bytes"]
    x = range(len(data))
    ax.bar(
        [i - 0.2 for i in x], [r["plaintext_record_bytes"] or 0 for r in data], width=0.4, label="plaintext"
    )
    ax.bar(
        [i + 0.2 for i in x], [r["encrypted_record_bytes"] or 0 for r in data], width=0.4, label="encrypted"
    )
    ax.set_xticks(list(x), [f"{r['suite']}\n{size_label(r['size'])}" for r in data])
    ax.set_yscale("log")
    ax.set_ylabel("bytes per record (key + headers + value, log)")
    ax.set_title("Bytes per record on the topic")
    ax.legend(fontsize=7)

    fig.suptitle(f"Keyfan: encryption vs plaintext ({machine_line(results.get('machine', {}))})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_results(
    results: dict[str, Any], out_dir: Path, *, readme_section: Path | None = None
) -> list[Path]:
    """Write the three result files (and the README section if asked); the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / RESULTS_JSON, out_dir / RESULTS_MD, out_dir / RESULTS_PNG]
    written[0].write_text(json.dumps(results, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    written[1].write_text(render_markdown(results), encoding="utf-8")
    render_chart(results, written[2])
    if readme_section is not None:
        readme_section.parent.mkdir(parents=True, exist_ok=True)
        readme_section.write_text(render_readme_section(results), encoding="utf-8")
        written.append(readme_section)
    return written
