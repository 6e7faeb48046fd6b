"""``keyfan generate``: run the generator Lambda's handler locally, under the generator's own role."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from pydantic import ValidationError

from keyfan.exceptions import KeyfanError
from keyfan.plugins import generator
from keyfan.settings import GeneratorSettings


@click.command()
@click.option("--count", "-n", type=click.IntRange(min=0), required=True, help="How many events to send.")
@click.option("--seed", type=int, default=None, help="Same seed, same events.")
@click.option(
    "--department", "departments", multiple=True, help="Only these departments (repeatable); default: all."
)
@click.option(
    "--role-arn",
    envvar=["KEYFAN_ROLE_ARN", "KEYFAN_GENERATOR_ROLE_ARN"],
    default=None,
    help="Role to send as (default: $KEYFAN_ROLE_ARN, else the generator role from `keyfan local env`).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (logs go to stderr).")
def generate(
    count: int, seed: int | None, departments: tuple[str, ...], role_arn: str | None, as_json: bool
) -> None:
    """Send COUNT generated events to the owner's queue (KEYFAN_QUEUE_URL), as the generator Lambda would."""
    try:
        # queue_url comes from the environment; the role, as the Lambda's own, from the option above
        overrides = {"role_arn": role_arn} if role_arn else {}
        settings = GeneratorSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        missing = ", ".join(f"KEYFAN_{'.'.join(map(str, e['loc'])).upper()}" for e in exc.errors())
        raise click.ClickException(f"missing or invalid settings: {missing}") from None
    event: dict[str, Any] = {"count": count, "seed": seed}
    if departments:
        event["departments"] = list(departments)
    try:
        # The generator Lambda's own handler, found through its entry point (it imports Powertools and boto3
        # only now); stdout is for the result only, its logs and metrics go to stderr.
        result = generator()(event, settings)
    except KeyfanError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(result, sort_keys=True))
    else:
        for department, sent in result["by_department"].items():
            click.echo(f"{department:<12} {sent:>7} sent")
        click.echo(f"{'total':<12} {result['sent']:>7} sent, {result['failed']} failed")
    if result["failed"]:
        sys.exit(1)
