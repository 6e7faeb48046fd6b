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

    monkeypatch.setattr(worker.faust, "Worker", FakeWorker)
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
