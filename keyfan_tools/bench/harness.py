"""Run the benchmark on a local stack and write the results: the one entry point for the CLI and tests."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from keyfan.logs import QUIET_LOGGERS, logging_config
from keyfan_tools.bench.config import BenchConfig
from keyfan_tools.bench.context import BenchContext
from keyfan_tools.bench.report import write_results
from keyfan_tools.bench.results import BenchResults
from keyfan_tools.bench.runner import run_benchmark
from keyfan_tools.local import LocalStack

Progress = Callable[[str], None]


@contextlib.contextmanager
def bench_logging(path: Path) -> Iterator[None]:
    """The services' JSON log lines go to a file while the benchmark runs (the pipelines log as in
    production, off the terminal); the noisy libraries are held where the services hold them. Restored after.
    """
    config = logging_config("keyfan-bench", "INFO")
    formatter_args = dict(config["formatters"]["json"])
    factory = formatter_args.pop("()")
    module, _, name = factory.rpartition(".")
    formatter = getattr(importlib.import_module(module), name)(**formatter_args)
    handler = logging.FileHandler(path)
    handler.setFormatter(formatter)
    keyfan = logging.getLogger("keyfan")
    saved = (keyfan.level, keyfan.propagate)
    quiet = {name: logging.getLogger(name) for name in QUIET_LOGGERS}
    saved_levels = {name: logger.level for name, logger in quiet.items()}
    keyfan.addHandler(handler)
    keyfan.setLevel(logging.INFO)
    keyfan.propagate = False
    for name, logger in quiet.items():
        logger.setLevel(QUIET_LOGGERS[name])
    try:
        yield
    finally:
        keyfan.removeHandler(handler)
        handler.close()
        keyfan.setLevel(saved[0])
        keyfan.propagate = saved[1]
        for name, logger in quiet.items():
            logger.setLevel(saved_levels[name])


def bench_on_stack(
    stack: LocalStack,
    config: BenchConfig,
    out_dir: Path,
    *,
    readme_section: Path | None = None,
    work_dir: Path | None = None,
    progress: Progress = lambda _: None,
) -> BenchResults:
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
) -> BenchResults:
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
