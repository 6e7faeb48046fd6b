"""Running a Keyfan Faust app as a worker process: the one place shared by every service entrypoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faust


def run_worker(app: faust.App, *, data_dir: Path, loglevel: str, logging_config: dict[str, Any]) -> None:
    """Block until SIGTERM/SIGINT. Faust creates only the last level of its data directory, so a fresh
    checkout (no ``.keyfan/faust`` yet) needs the parents made first."""
    data_dir.mkdir(parents=True, exist_ok=True)
    worker = faust.Worker(
        app, loglevel=loglevel, logging_config=logging_config, quiet=True, redirect_stdouts=False
    )
    worker.execute_from_commandline()
