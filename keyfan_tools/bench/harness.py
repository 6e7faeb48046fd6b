"""Run the benchmark on a local stack and write the results: the one entry point for the CLI and tests."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from keyfan_tools.bench.context import BenchContext
from keyfan_tools.bench.report import write_results
from keyfan_tools.bench.runner import BenchConfig, bench_logging, run_benchmark
from keyfan_tools.local import LocalStack

Progress = Callable[[str], None]


def bench_on_stack(
    stack: LocalStack,
    config: BenchConfig,
    out_dir: Path,
    *,
    readme_section: Path | None = None,
    work_dir: Path | None = None,
    progress: Progress = lambda _: None,
) -> dict[str, Any]:
    """Measure on a running, provisioned ``stack``; write ``results.{json,md,png}`` to ``out_dir``."""
    work = work_dir or stack.state_dir
    ctx = BenchContext.from_stack(stack)
    with bench_logging(work / "bench.log"):
        results = asyncio.run(run_benchmark(ctx, config, work_dir=work, progress=progress))
    write_results(results, out_dir, readme_section=readme_section)
    return results


def bench_private_stack(
    config: BenchConfig,
    out_dir: Path,
    *,
    departments_file: Path | None = None,
    iac_dir: Path | None = None,
    readme_section: Path | None = None,
    keep_work_dir: bool = False,
    progress: Progress = lambda _: None,
) -> dict[str, Any]:
    """Start a private local stack in a temporary directory, measure, and stop it whatever happens."""
    work = Path(tempfile.mkdtemp(prefix="keyfan-bench-"))
    stack = LocalStack(work / "state", departments_file=departments_file, iac_dir=iac_dir)
    try:
        progress(f"starting a private local stack in {work}")
        stack.up()
        return bench_on_stack(
            stack, config, out_dir, readme_section=readme_section, work_dir=work, progress=progress
        )
    finally:
        for line in stack.down():
            progress(line)
        if not keep_work_dir:
            shutil.rmtree(work, ignore_errors=True)
