"""The report of a run, from its ``BenchResults``: ``results.json``, ``results.md``, ``results.png`` and the
README's Performance section.

    cells.py           how a figure is written in a table cell; the Markdown table
    tables.py          goals, throughput, KMS calls, latency, bytes, memory
    dedupe.py          the deduplication window's cost
    profiles.py        where the time goes (cProfile)
    markdown.py        results.md
    readme_section.py  the README's Performance section
    chart.py           results.png
    files.py           writes them all (the only module here that touches files)
"""

from keyfan_tools.bench.report.files import read_results, write_results

__all__ = ["read_results", "write_results"]
