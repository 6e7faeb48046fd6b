"""`keyfan local ...` as a user runs it: a real CLI process per command, its own stack in a tmp state dir."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from keyfan_tools.local import LocalStack
from keyfan_tools.local import processes as procs
from keyfan_tools.local.processes import cmdline_of, pid_alive

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
KEYFAN = Path(sys.executable).parent / "keyfan"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A state dir and a private copy of departments.toml (one test adds a department to it)."""
    root = tmp_path_factory.mktemp("keyfan-cli")
    shutil.copy(REPO / "departments.toml", root / "departments.toml")
    yield root
    # Whatever happened, stop what this module's stack started.
    LocalStack(root / "state").down()


def run(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KEYFAN_"))}
    env["KEYFAN_STATE_DIR"] = str(workdir / "state")
    env["KEYFAN_DEPARTMENTS_FILE"] = str(workdir / "departments.toml")
    result = subprocess.run(
        [str(KEYFAN), "local", "--iac-dir", str(REPO / "iac"), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=workdir,
        timeout=120,
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"keyfan local {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def recorded_pids(workdir: Path) -> dict[str, int]:
    state = json.loads((workdir / "state" / "state.json").read_text())
    return {name: state[name]["pid"] for name in ("moto", "broker")}


def test_up_twice_is_idempotent(workdir: Path) -> None:
    first = run(workdir, "up")
    assert "healthy" in first.stdout
    pids = recorded_pids(workdir)
    assert all(pid_alive(pid) for pid in pids.values())

    second = run(workdir, "up")
    assert "already running" in second.stderr
    assert recorded_pids(workdir) == pids
    assert (workdir / "state" / "admin.json").stat().st_mode & 0o777 == 0o600
    assert (workdir / "state" / "state.json").stat().st_mode & 0o777 == 0o600


def test_status_reports_processes(workdir: Path) -> None:
    out = run(workdir, "status").stdout
    pids = recorded_pids(workdir)
    assert "local stack: healthy" in out
    for name, pid in pids.items():
        assert f"pid {pid}" in out
        assert name in out


def test_env_evaluates_in_bash_and_reaches_the_role(workdir: Path) -> None:
    exports = run(workdir, "env", "--as", "owner").stdout
    admin = json.loads((workdir / "state" / "admin.json").read_text())
    assert admin["secret_access_key"] not in exports
    assert admin["access_key_id"] not in exports
    # Given the printed environment, a service builds its session the production way (settings -> aws)
    script = textwrap.dedent(
        """
        from keyfan.aws import caller_arn, session_for
        from keyfan.settings import KafkaSettings
        s = KafkaSettings()
        print(s.bootstrap_servers, s.topic, s.audit_topic, s.dlq_topic)
        print(caller_arn(session_for(s)))
        """
    )
    result = subprocess.run(
        ["bash", "-c", f'eval "$(cat)"; "{sys.executable}" -c \'{script}\''],
        input=exports,
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    bootstrap_line, arn = result.stdout.strip().splitlines()[-2:]
    assert bootstrap_line.split()[1:] == ["keyfan.events", "keyfan.audit", "keyfan.dlq"]
    assert arn.startswith("arn:aws:sts::123456789012:assumed-role/keyfan-owner/")
    for name in ("KEYFAN_SALES_KEY_ARN", "KEYFAN_FINANCE_ROLE_ARN", "KEYFAN_QUEUE_URL", "KEYFAN_ROLE_ARN"):
        assert f"export {name}=" in exports


def test_provision_adds_a_department_without_code_change(workdir: Path) -> None:
    before = LocalStack(workdir / "state").env()
    with open(workdir / "departments.toml", "a") as registry:
        registry.write(
            '\n[[department]]\nname = "hr"\npartitions = [6, 7]\n'
            'key_alias = "alias/keyfan-hr"\nconsumer_identity = "keyfan-hr-consumer"\n'
        )
    out = run(workdir, "provision").stdout
    assert "finance, hr, sales" in out
    assert "keyfan.events (8 partitions)" in out

    stack = LocalStack(workdir / "state")
    after = stack.env()
    assert after["KEYFAN_HR_ROLE_ARN"].endswith(":role/keyfan-hr-consumer")
    # Existing keys survive re-provisioning (ciphertexts already on the topic stay readable)
    assert after["KEYFAN_SALES_KEY_ARN"] == before["KEYFAN_SALES_KEY_ARN"]
    # And the new role is enforced like the others: hr can decrypt hr, not sales
    admin_kms = stack.admin_session().client("kms")
    hr_blob = admin_kms.encrypt(KeyId="alias/keyfan-hr", Plaintext=b"hr")["CiphertextBlob"]
    sales_blob = admin_kms.encrypt(KeyId="alias/keyfan-sales", Plaintext=b"s")["CiphertextBlob"]
    hr_kms = stack.session_for("hr").client("kms")
    assert hr_kms.decrypt(CiphertextBlob=hr_blob)["Plaintext"] == b"hr"
    with pytest.raises(Exception, match="AccessDeniedException"):
        hr_kms.decrypt(CiphertextBlob=sales_blob)

    # Provisioning again changes nothing
    again = run(workdir, "provision").stdout
    assert "re-created" not in again
    assert LocalStack(workdir / "state").env() == after


def test_dead_process_is_reported_and_restarted(workdir: Path) -> None:
    pids = recorded_pids(workdir)
    os.kill(pids["broker"], signal.SIGKILL)
    status = run(workdir, "status", check=False)
    assert status.returncode == 1
    assert "UNHEALTHY" in status.stdout and "dead" in status.stdout

    restarted = run(workdir, "up")
    assert "restarting cleanly" in restarted.stderr
    new = recorded_pids(workdir)
    assert new["moto"] != pids["moto"] and not pid_alive(pids["moto"])
    assert "local stack: healthy" in run(workdir, "status").stdout


@pytest.mark.parametrize("listening", [True, False], ids=["squatter-listens", "squatter-only-binds"])
def test_taken_port_is_skipped(workdir: Path, monkeypatch: pytest.MonkeyPatch, listening: bool) -> None:
    # Given free_port() first hands out a port someone else holds (listening: seen before spawning;
    # only bound: our process fails to bind and exits, and the stack retries elsewhere)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        if listening:
            squatter.listen()
        taken = squatter.getsockname()[1]
        real_free_port = procs.free_port
        ports = iter([taken, taken])
        monkeypatch.setattr(
            procs, "free_port", lambda host="127.0.0.1": next(ports, None) or real_free_port(host)
        )
        stack = LocalStack(
            workdir / f"other-state-{listening}",
            departments_file=workdir / "departments.toml",
            iac_dir=REPO / "iac",
        )
        try:
            # When the stack starts, then it moves on to other ports instead of failing
            stack.up()
            state = stack.state
            assert state.moto is not None and state.broker is not None
            assert taken not in (state.moto.port, state.broker.port)
            assert stack.status().healthy
        finally:
            stack.down()


def test_down_leaves_no_process(workdir: Path) -> None:
    pids = recorded_pids(workdir)
    argvs = {pid: cmdline_of(pid) for pid in pids.values()}
    out = run(workdir, "down").stdout
    assert "stopped moto" in out and "stopped broker" in out
    for pid in pids.values():
        assert not pid_alive(pid), f"pid {pid} ({argvs[pid]}) survived down"
        assert not Path(f"/proc/{pid}").exists() or cmdline_of(pid) != argvs[pid]
    assert not (workdir / "state" / "state.json").exists()
    assert not (workdir / "state" / "admin.json").exists()
    # down again is harmless
    assert "no local stack" in run(workdir, "down").stdout
