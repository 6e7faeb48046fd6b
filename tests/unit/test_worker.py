"""Every service worker can start on a fresh checkout, where the data directory's parents do not exist."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faust
import pytest

from keyfan import worker


def test_worker_creates_its_data_directory_with_parents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[dict[str, Any]] = []

    class FakeWorker:
        def __init__(self, app: faust.App, **kwargs: Any) -> None:
            started.append({"app": app, **kwargs})

        def execute_from_commandline(self) -> None:
            started[-1]["executed"] = True

    monkeypatch.setattr(worker, "ServiceWorker", FakeWorker)
    data_dir = tmp_path / "fresh" / "checkout" / "keyfan-sales"
    app = faust.App("t", autodiscover=False)

    worker.run_worker(app, data_dir=data_dir, loglevel="INFO", logging_config={"version": 1})

    assert data_dir.is_dir()
    assert started == [
        {
            "app": app,
            "loglevel": "INFO",
            "logging_config": {"version": 1},
            "quiet": True,
            "redirect_stdouts": False,
            "executed": True,
        }
    ]


def test_a_service_worker_leaves_the_log_level_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    # Faust's spinner would set the root logger to DEBUG at WARNING and above: every debug call anywhere
    # would build a log record (about 100 µs per consumed record)
    import logging

    service = worker.ServiceWorker(faust.App("t", autodiscover=False), loglevel="WARNING", quiet=True)
    root = logging.getLogger()
    monkeypatch.setattr(root, "level", logging.WARNING)
    handlers = list(root.handlers)
    service.on_setup_root_logger(root, logging.WARNING)
    assert root.level == logging.WARNING and root.handlers == handlers and service.spinner is None
