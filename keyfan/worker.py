"""Running a Keyfan Faust app as a worker process: the one place shared by every service entrypoint."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import faust


class ServiceWorker(faust.Worker):
    """A Faust worker for a service, which has no terminal: no progress spinner.

    At a log level of WARNING or above, Faust's spinner sets the root logger to DEBUG and adds a handler
    that spins on every record, so every ``logger.debug`` anywhere (aiokafka's, ours) builds a log record:
    about 100 µs per consumed record, measured here with cProfile on the consumer worker.
    """

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        self.spinner = None


def run_worker(app: faust.App, *, data_dir: Path, loglevel: str, logging_config: dict[str, Any]) -> None:
    """Block until SIGTERM/SIGINT. Faust creates only the last level of its data directory, so a fresh
    checkout (no ``.keyfan/faust`` yet) needs the parents made first."""
    data_dir.mkdir(parents=True, exist_ok=True)
    worker = ServiceWorker(
        app, loglevel=loglevel, logging_config=logging_config, quiet=True, redirect_stdouts=False
    )
    worker.execute_from_commandline()
