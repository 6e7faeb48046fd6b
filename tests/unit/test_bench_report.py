"""Rendering and writing the results: Markdown tables, the README section, the PNG chart."""

from __future__ import annotations

import json

from keyfan_tools.bench.report import (
    CHART_LINK,
    render_markdown,
    render_readme_section,
    size_label,
    write_results,
)
from keyfan_tools.bench.summary import summarize
from tests.unit.test_bench_summary import latency, three_runs

MACHINE = {"nproc": 2, "cpu_model": "Test CPU", "ram_gb": 4.0, "python": "3.11.7", "platform": "Linux"}


def results():
    lat = [latency(0, "plaintext", 20, 40), latency(0, "encrypted", 22, 44)]
    return summarize(
        three_runs(), lat, config={"runs": 3, "duration_seconds": 12.5}, machine=MACHINE, notes=["a note"]
    )


def test_size_labels():
    assert [size_label(s) for s in (256, 1024, 16384, 1000)] == ["256 B", "1 KB", "16 KB", "1000 B"]


def test_markdown_has_every_table_with_ratios():
    text = render_markdown(results())
    for heading in (
        "## Goals",
        "## Throughput",
        "## KMS calls",
        "## End-to-end latency",
        "## Bytes per record",
    ):
        assert heading in text
    assert "| owner path (SQS -> topic) | signed | 1 KB | 95 | 100 | 0.90x |" in text
    assert "**no**" in text  # a missed goal is visible
    assert "- a note" in text


def test_readme_section_links_the_chart_and_names_the_machine_and_how_to_reproduce():
    text = render_readme_section(results())
    assert text.startswith("## Performance")
    assert f"]({CHART_LINK})" in text
    assert "2 CPUs (Test CPU), 4.0 GB RAM, Python 3.11.7" in text
    assert "make bench" in text and "keyfan bench --quick" in text


def test_write_results_writes_json_markdown_png_and_the_readme_section(tmp_path):
    written = write_results(results(), tmp_path / "out", readme_section=tmp_path / "README-performance.md")
    assert [p.name for p in written] == ["results.json", "results.md", "results.png", "README-performance.md"]
    assert json.loads(written[0].read_text())["throughput"]
    assert written[2].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
