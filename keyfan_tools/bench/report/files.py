"""Writes a run's results: ``results.json``, ``results.md`` (Markdown tables), ``results.png`` (chart), and the
README "Performance" section. The one module of the report that touches files."""

from __future__ import annotations

import json
from pathlib import Path

from keyfan_tools.bench.report.chart import render_chart
from keyfan_tools.bench.report.markdown import render_markdown
from keyfan_tools.bench.report.readme_section import render_readme_section
from keyfan_tools.bench.results import BenchResults

RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
RESULTS_PNG = "results.png"


def write_results(results: BenchResults, out_dir: Path, *, readme_section: Path | None = None) -> list[Path]:
    """Write the three result files (and the README section if asked); the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / RESULTS_JSON, out_dir / RESULTS_MD, out_dir / RESULTS_PNG]
    written[0].write_text(
        json.dumps(results.as_document(), indent=2, sort_keys=False) + "\n", encoding="utf-8"
    )
    written[1].write_text(render_markdown(results), encoding="utf-8")
    render_chart(results, written[2])
    if readme_section is not None:
        readme_section.parent.mkdir(parents=True, exist_ok=True)
        readme_section.write_text(render_readme_section(results), encoding="utf-8")
        written.append(readme_section)
    return written


def read_results(path: Path) -> BenchResults:
    """A ``results.json`` read back (``bench/results/results.json``, say, to render its report again)."""
    return BenchResults.from_document(json.loads(path.read_text(encoding="utf-8")))
