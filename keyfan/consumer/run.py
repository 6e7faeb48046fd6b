"""The entrypoint shared by ``python -m sales_consumer`` and ``python -m finance_consumer``.

Settings come from the environment (``KEYFAN_*``, see ``keyfan.settings``); ``KEYFAN_DEPARTMENT``
defaults to the app's own department. Flags only override what an operator changes per run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import click

from keyfan.consumer.app import create_consumer_app
from keyfan.consumer.handler import DomainHandler
from keyfan.logs import logging_config
from keyfan.settings import ConsumerSettings
from keyfan.worker import run_worker


def load_settings(default_department: str, **overrides: Any) -> ConsumerSettings:
    """Read ``ConsumerSettings`` from the environment; explicit overrides (flags) win."""
    given = {k: v for k, v in overrides.items() if v is not None}
    return ConsumerSettings.for_app(default_department, **given)


def run_consumer(
    settings: ConsumerSettings,
    handler: DomainHandler,
    loglevel: str = "INFO",
    library_loglevel: str | None = None,
) -> None:
    """Start a Faust worker for this consumer and block until it stops (SIGTERM/SIGINT)."""
    run_worker(
        create_consumer_app(settings, handler),
        data_dir=settings.data_dir / settings.consumer_group,
        loglevel=loglevel,
        logging_config=_logging_config(settings.department, loglevel, library_loglevel),
    )


def consumer_command(default_department: str, handler_factory: Callable[[], DomainHandler]) -> click.Command:
    """The click command behind ``python -m <department>_consumer``."""

    @click.command(name=f"{default_department}-consumer")
    @click.option(
        "--own-partitions/--all-partitions",
        default=None,
        help="Only the department's own partitions (default: every partition, as settings say).",
    )
    @click.option("--web-port", type=int, default=None, help="Port of /state and /metrics.")
    @click.option("--group-id", default=None, help="Consumer group (default keyfan-<department>).")
    @click.option("--loglevel", default=None, help="Log level (default: KEYFAN_LOG_LEVEL, else INFO).")
    @click.option(
        "--library-loglevel", default=None, help="Log level for faust/mode/aiokafka (default: WARNING)."
    )
    def command(
        own_partitions: bool | None,
        web_port: int | None,
        group_id: str | None,
        loglevel: str | None,
        library_loglevel: str | None,
    ) -> None:
        settings = load_settings(
            default_department, own_partitions=own_partitions, web_port=web_port, group_id=group_id
        )
        run_consumer(settings, handler_factory(), loglevel or settings.log_level, library_loglevel)

    return command


def main(
    default_department: str, handler_factory: Callable[[], DomainHandler], argv: Sequence[str] | None = None
) -> None:
    consumer_command(default_department, handler_factory).main(args=list(argv) if argv is not None else None)


def _logging_config(department: str, loglevel: str, library_loglevel: str | None) -> dict[str, Any]:
    """JSON logs (``keyfan.logs``); Faust, mode and aiokafka stay quiet unless asked (rebalance debugging)."""
    config = logging_config(f"{department}-consumer", loglevel)
    if library_loglevel:
        for name in ("faust", "mode", "aiokafka"):
            config["loggers"][name] = {"level": library_loglevel.upper()}
    return config
