"""``keyfan demo``: run the whole pipeline on the embedded local stack and report who read what."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click


@click.command()
@click.option(
    "--count", "-n", type=click.IntRange(min=1), default=50, show_default=True, help="Events to generate."
)
@click.option("--seed", type=int, default=7, show_default=True, help="Same seed, same events.")
@click.option(
    "--timeout", type=float, default=240.0, show_default=True, help="Seconds to wait for every event."
)
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    default=Path(".keyfan/demo"),
    show_default=True,
    help="The demo's own stack state (separate from `keyfan local up`).",
)
@click.option("--json", "as_json", is_flag=True, help="Print only the accounting, as JSON.")
def demo(count: int, seed: int, timeout: float, state_dir: Path, as_json: bool) -> None:
    """Generate COUNT events, encrypt and publish them, let each department consume, then report.

    Exits non-zero if any event is unaccounted for or a department read what it should not.
    """
    from keyfan_tools.demo import render, run_demo

    def progress(message: str) -> None:
        click.echo(f"[demo] {message}", err=True)

    report = run_demo(
        count=count,
        seed=seed,
        state_dir=state_dir,
        timeout=timeout,
        progress=progress,
        with_sample=not as_json,
    )
    if as_json:
        click.echo(json.dumps(report.summary(), sort_keys=False))
    else:
        click.echo(render(report))
    sys.exit(0 if report.ok else 1)
