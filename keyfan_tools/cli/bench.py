"""``keyfan bench``: encrypted vs plaintext, measured side by side on a private local stack."""

from __future__ import annotations

import time
from pathlib import Path

import click

from keyfan.exceptions import KeyfanError

DEFAULT_OUT = Path("bench/results")
README = Path("README.md")
QUICK_OUT = Path(".keyfan/bench-quick")
README_SECTION = "README-performance.md"


def parse_size(text: str) -> int:
    """``256``, ``256b``, ``1k``, ``1kb``, ``16KB`` -> bytes."""
    part = text.strip().lower()
    if part.endswith("kb"):
        return int(part[:-2]) * 1024
    if part.endswith("k"):
        return int(part[:-1]) * 1024
    return int(part.removesuffix("b"))


def _sizes(value: str | None) -> tuple[int, ...] | None:
    if not value:
        return None
    try:
        sizes = tuple(parse_size(part) for part in value.split(","))
    except ValueError as exc:
        raise click.BadParameter(
            f"sizes are byte counts such as 256,1024,16384 or 1k,16k: {value!r}"
        ) from exc
    if any(size <= 0 for size in sizes):
        raise click.BadParameter("sizes must be positive")
    return sizes


@click.command("bench")
@click.option("--quick", is_flag=True, help="A tiny run (one run, few records) to check the harness.")
@click.option(
    "--runs", type=click.IntRange(1, 20), default=None, help="Runs per figure [default: 3, quick: 1]."
)
@click.option(
    "--sizes", default=None, help="Payload sizes in bytes, comma-separated [default: 256,1024,16384]."
)
@click.option(
    "--suites",
    type=click.Choice(["v2", "fields", "signed", "unsigned", "all"]),
    default="all",
    show_default=True,
    help="What the owner writes: wire v2, wire v2 with personal fields under subject keys (fields), or "
    "wire v1 with the signed or unsigned suite.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"Results directory [default: {DEFAULT_OUT}, quick: {QUICK_OUT}].",
)
@click.option(
    "--worker-records",
    type=click.IntRange(0, 1_000_000),
    default=None,
    help="Records each Faust worker drains (0: no worker phase) [default: 5000, quick: 200].",
)
@click.option("--no-processes", is_flag=True, help="Skip the real-process peak-memory phase.")
@click.option("--no-profile", is_flag=True, help="Skip the cProfile phase.")
def bench(
    quick: bool,
    runs: int | None,
    sizes: str | None,
    suites: str,
    out: Path | None,
    worker_records: int | None,
    no_processes: bool,
    no_profile: bool,
) -> None:
    """Measure the cost of encryption against a plaintext baseline, in one run; write bench/results/."""
    # Imported here so that `keyfan --help` does not pay for the Encryption SDK, boto3 and aiokafka.
    from keyfan_tools.bench.config import BenchConfig
    from keyfan_tools.bench.harness import bench_private_stack
    from keyfan_tools.bench.readme import update_readme

    config = (BenchConfig.quick_config() if quick else BenchConfig()).with_overrides(
        runs=runs,
        sizes=_sizes(sizes),
        suites=None if suites == "all" else (suites,),  # all: BenchConfig's own order
        worker_records=worker_records,
        real_processes=False if no_processes else None,
        profile=False if no_profile else None,
    )
    out_dir = out or (QUICK_OUT if quick else DEFAULT_OUT)
    readme = out_dir.parent / README_SECTION if out_dir == DEFAULT_OUT else out_dir / README_SECTION
    began = time.monotonic()
    try:
        results = bench_private_stack(config, out_dir, readme_section=readme, progress=click.echo)
    except KeyfanError as exc:
        raise click.ClickException(str(exc)) from exc
    if out_dir == DEFAULT_OUT and README.exists():
        update_readme(README, readme)  # the README's Performance section is this run's, verbatim
    for goal in results.goals:
        click.echo(f"{'met    ' if goal.met else 'MISSED '} {goal.goal}: {goal.worst:.2f}")
    written = f"{readme} and {README}" if out_dir == DEFAULT_OUT else str(readme)
    click.echo(f"results in {out_dir}/ and {written} ({time.monotonic() - began:.0f} s)")
