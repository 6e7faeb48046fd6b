"""``keyfan local up|down|status|env|provision``: the embedded stack from the command line.

A thin shell over ``keyfan_tools.local.LocalStack``; options fall back to the same environment variables the
services read (``KEYFAN_STATE_DIR``, ``KEYFAN_DEPARTMENTS_FILE``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from keyfan.exceptions import ConfigError, LocalStackError
from keyfan_tools.local.environment import render_exports
from keyfan_tools.local.state import DEFAULT_STATE_DIR, STATE_DIR_ENV

if TYPE_CHECKING:
    from keyfan_tools.local import LocalStack


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except (LocalStackError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from exc


@click.group("local")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar=STATE_DIR_ENV,
    default=DEFAULT_STATE_DIR,
    show_default=True,
    help="Where pids, ports, logs and local credentials live.",
)
@click.option(
    "--departments-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="KEYFAN_DEPARTMENTS_FILE",
    default=Path("departments.toml"),
    show_default=True,
)
@click.option(
    "--iac-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="CloudFormation templates to deploy into moto [default: ./iac or the repository's iac/].",
)
@click.pass_context
def local(ctx: click.Context, state_dir: Path, departments_file: Path, iac_dir: Path | None) -> None:
    """The embedded local stack: Tansu broker + moto server with IAM enforced, provisioned from iac/."""
    from keyfan_tools.local import LocalStack  # boto3 and aiokafka: only when a command runs

    ctx.obj = LocalStack(state_dir, departments_file=departments_file, iac_dir=iac_dir)


@local.command()
@click.pass_obj
def up(stack: LocalStack) -> None:
    """Start and provision the stack (does nothing if it already runs)."""
    with _errors():
        result = stack.up()
    for note in result.notes:
        click.echo(note, err=True)
    if result.started:
        click.echo(f"local stack up in {result.seconds:.1f}s", err=True)
        click.echo(stack.status().render())
    click.echo('load it into your shell with: eval "$(keyfan local env)"', err=True)


@local.command()
@click.pass_obj
def down(stack: LocalStack) -> None:
    """Stop the stack's own processes (and nothing else) and forget its state."""
    with _errors():
        for note in stack.down():
            click.echo(note)


@local.command()
@click.pass_obj
def status(stack: LocalStack) -> None:
    """What runs, where, and whether it is healthy (exit status 1 if not)."""
    with _errors():
        current = stack.status()
    click.echo(current.render())
    if not current.healthy:
        raise SystemExit(1)


@local.command()
@click.option(
    "--as",
    "identity",
    default=None,
    help="Also set KEYFAN_ROLE_ARN for this identity: owner, generator or a department name.",
)
@click.pass_obj
def env(stack: LocalStack, identity: str | None) -> None:
    """Print `export` lines for the services' environment (use: eval "$(keyfan local env)")."""
    with _errors():
        values = stack.env_for(identity) if identity else stack.env()
    click.echo(render_exports(values), nl=False)


@local.command()
@click.pass_obj
def provision(stack: LocalStack) -> None:
    """Re-deploy iac/ templates and topics after a change (e.g. a department added to departments.toml)."""
    with _errors():
        state = stack.provision()
    for note in stack.last_notes:
        click.echo(note)
    click.echo(f"provisioned departments: {', '.join(sorted(state.departments))}")
    click.echo(
        f"topics: {state.topics.events} ({state.topics.partitions} partitions), {state.topics.audit}, "
        f"{state.topics.dlq}"
    )
