"""The ``keyfan`` command. Each command group lives in its own module and is registered here."""

from __future__ import annotations

import importlib

import click

# module name -> attribute holding the click command or group; a module that is missing is skipped so that
# a partial checkout still starts (and says so in `keyfan --help`).
_COMMANDS: tuple[tuple[str, str], ...] = (
    ("keyfan.cli.local", "local"),
    ("keyfan.cli.generate", "generate"),
    ("keyfan.cli.consumer", "consumer"),
    ("keyfan.cli.demo", "demo"),
    ("keyfan.cli.bench", "bench"),
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Keyfan: one shared Kafka topic, per-department KMS keys."""


def _register() -> None:
    for module_name, attr in _COMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        cli.add_command(getattr(module, attr))


def main() -> None:
    _register()
    cli()
