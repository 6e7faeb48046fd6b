"""docker-compose's provisioner, against a bare moto server and Tansu broker (as compose's containers are)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from keyfan_tools.local import broker, motoserver, processes

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bare_servers(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Unprovisioned moto (auth off) and Tansu, like compose's `moto` and `kafka` services."""
    started: list[tuple[int, list[str]]] = []
    try:
        moto_port = processes.free_port()
        argv = motoserver.moto_argv(moto_port)
        pid = processes.spawn_detached(argv, tmp_path / "moto.log", motoserver.moto_env(dict(os.environ)))
        started.append((pid, argv))
        processes.wait_for_port(moto_port, pid=pid, timeout=30)
        kafka_port = processes.free_port()
        argv = broker.broker_argv(kafka_port)
        pid = processes.spawn_detached(argv, tmp_path / "broker.log", broker.broker_env(dict(os.environ)))
        started.append((pid, argv))
        processes.wait_for_port(kafka_port, pid=pid, timeout=30)
        yield {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto_port}",
            "KEYFAN_BOOTSTRAP_SERVERS": f"127.0.0.1:{kafka_port}",
            "KEYFAN_DEPARTMENTS_FILE": str(ROOT / "departments.toml"),
            "AWS_REGION": "us-east-1",
        }
    finally:
        for pid, argv in started:
            processes.terminate(pid, argv)
        assert not any(processes.pid_alive(pid) for pid, _ in started)


def _provision(env: dict[str, str], env_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "keyfan_tools.local.compose_provision",
            "--env-dir",
            str(env_dir),
            "--timeout",
            "30",
        ],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _caller_as(env_file: Path) -> str:
    """The identity a container that sources ``env_file`` ends up with (role assumed, as the service does)."""
    script = (
        "from keyfan.aws import session_for, caller_arn; from keyfan.settings import KeyfanSettings; "
        "print(caller_arn(session_for(KeyfanSettings())))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KEYFAN_"))}
    done = subprocess.run(
        ["bash", "-c", f'set -a && . "{env_file}" && exec "{sys.executable}" -c "{script}"'],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def test_provisioner_writes_one_env_file_per_identity_and_is_rerunnable(
    bare_servers: dict[str, str], tmp_path: Path
) -> None:
    env_dir = tmp_path / "keyfan-state"

    first = _provision(bare_servers, env_dir)

    assert first.returncode == 0, first.stderr[-3000:]
    assert sorted(p.name for p in env_dir.glob("*.env")) == [
        "finance.env",
        "generator.env",
        "owner.env",
        "sales.env",
    ]
    sales_env = (env_dir / "sales.env").read_text()
    assert f"AWS_ENDPOINT_URL={bare_servers['AWS_ENDPOINT_URL']}" in sales_env
    assert "KEYFAN_DEPARTMENT=sales" in sales_env
    # Each container becomes its own role, as on ECS
    assert ":assumed-role/keyfan-owner/" in _caller_as(env_dir / "owner.env")
    assert ":assumed-role/keyfan-sales-consumer/" in _caller_as(env_dir / "sales.env")

    # Re-running (compose restarts a one-shot service) changes nothing and succeeds with auth already on
    second = _provision(bare_servers, env_dir)
    assert second.returncode == 0, second.stderr[-3000:]
    assert (env_dir / "sales.env").read_text() == sales_env
