"""The ``keyfan`` command: one group, one module per command group, each added here.

Command modules import only click and the core at module level; whatever is slow to import (boto3 and the
Encryption SDK behind the bench, the demo, the generator) is imported inside the command that needs it,
so ``keyfan --help`` stays fast.
"""

from __future__ import annotations

import click

# The modules, not their commands: ``keyfan_tools.cli.consumer`` stays the module (a command of the same name
# imported here would shadow it).
from keyfan_tools.cli import bench, consumer, demo, forget, generate, local


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Keyfan: one shared Kafka topic, per-department KMS keys."""


for _command in (local.local, generate.generate, consumer.consumer, forget.forget, demo.demo, bench.bench):
    cli.add_command(_command)


def main() -> None:
    cli()
