"""``keyfan demo`` end to end: its own stack, real processes, every event accounted for, nothing left running."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from keyfan_tools.local.processes import pid_alive

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def test_demo_accounts_for_every_event_and_cleans_up(tmp_path: Path) -> None:
    state_dir = tmp_path / "demo"

    # When the demo runs as a user would, with a different count than the default
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "keyfan_tools",
            "demo",
            "--count",
            "30",
            "--seed",
            "11",
            "--json",
            "--state-dir",
            str(state_dir),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )

    # Then it exits 0 and each department decrypts exactly its own events and is denied exactly the others'
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    generated = report["generated"]
    assert sum(generated.values()) == 30
    assert report["published"] == generated
    assert report["dead_lettered"] == 0
    assert report["unaccounted"] == 0
    for department, counts in report["consumers"].items():
        others = sum(n for name, n in generated.items() if name != department)
        assert counts == {"decrypted": generated[department], "access_denied": others, "dead_lettered": 0}

    # And no process of its stack or services survives. Each one wrote a log under the state dir, so any
    # survivor would still hold a file there open.
    assert not (state_dir / "state.json").exists()
    logs = sorted(log.name for log in (state_dir / "logs").glob("*.log"))
    assert {"broker.log", "moto.log", "owner_service.log", "sales_consumer.log"} <= set(logs)
    assert _pids_holding_files_under(state_dir) == []


def _pids_holding_files_under(directory: Path) -> list[int]:
    holders = []
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            targets = [str(fd.readlink()) for fd in fd_dir.iterdir()]
        except OSError:
            continue  # gone, or not ours to read
        pid = int(fd_dir.parent.name)
        if any(t.startswith(str(directory)) for t in targets) and pid_alive(pid):
            holders.append(pid)
    return holders
