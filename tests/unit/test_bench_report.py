"""Rendering and writing the results: Markdown tables, the README section, the PNG chart; and reading the
committed results back."""

from __future__ import annotations

import json
from pathlib import Path

from keyfan_tools.bench.report import read_results, write_results
from keyfan_tools.bench.report.cells import size_label
from keyfan_tools.bench.report.markdown import render_markdown
from keyfan_tools.bench.report.readme_section import CHART_LINK, render_readme_section
from keyfan_tools.bench.results import BenchResults, Machine, RunConfig
from keyfan_tools.bench.summary import summarize
from tests.unit.test_bench_summary import latency, three_runs

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "bench" / "results"
MACHINE = {"nproc": 2, "cpu_model": "Test CPU", "ram_gb": 4.0, "python": "3.11.7", "platform": "Linux"}


def results():
    lat = [latency(0, "plaintext", 20, 40), latency(0, "encrypted", 22, 44)]
    return summarize(
        three_runs(),
        lat,
        config=RunConfig(runs=3, duration_seconds=12.5),
        machine=Machine(**MACHINE),
        notes=["a note"],
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


def test_the_document_reads_back_as_the_same_typed_results(tmp_path):
    # Given results written to results.json, when read back, then they are the same results
    written = write_results(results(), tmp_path)
    assert read_results(written[0]) == results()


def test_the_committed_results_read_back_unchanged_and_render_the_committed_report():
    # Given the results of the last full run, as committed
    text = (COMMITTED / "results.json").read_text(encoding="utf-8")
    committed = read_results(COMMITTED / "results.json")

    # then every row is typed and the document is written back to the letter
    assert isinstance(committed, BenchResults) and committed.throughput and committed.dedupe
    assert json.dumps(committed.as_document(), indent=2) + "\n" == text

    # and the report code renders the committed results.md and README section from them
    assert render_markdown(committed) == (COMMITTED / "results.md").read_text(encoding="utf-8")
    readme_section = (REPO / "bench" / "README-performance.md").read_text(encoding="utf-8")
    assert render_readme_section(committed) == readme_section
