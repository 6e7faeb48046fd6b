"""Pid and port helpers: a pid is only ever signalled if it still runs the argv we launched."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

from keyfan.exceptions import LocalStackError
from keyfan_tools.local import processes
from keyfan_tools.local.stack import default_state_dir

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def test_free_port_is_bindable() -> None:
    port = processes.free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_port_open_sees_a_listener() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        assert not processes.port_open(port)
        sock.listen()
        assert processes.port_open(port)


def test_listens_on_tells_whose_socket_it_is(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        assert not processes.listens_on(os.getpid(), port)
        sock.listen()
        assert processes.listens_on(os.getpid(), port)
        other = processes.spawn_detached(SLEEPER, tmp_path / "sleep.log")
        try:
            assert not processes.listens_on(other, port)
        finally:
            processes.terminate(other, SLEEPER)


def test_cmdline_of_this_process() -> None:
    argv = processes.cmdline_of(os.getpid())
    assert argv is not None and argv[0].endswith(("python", "python3", "python3.11", "pytest"))
    assert processes.cmdline_of(2**22 + 1) is None


def test_terminate_refuses_a_pid_running_something_else(tmp_path: Path) -> None:
    pid = processes.spawn_detached(SLEEPER, tmp_path / "sleep.log")
    try:
        assert processes.pid_alive(pid)
        assert processes.is_our_process(pid, SLEEPER)
        # Given the recorded argv differs (the pid was reused by another program), nothing is signalled
        assert not processes.terminate(pid, [*SLEEPER, "--other"])
        assert processes.pid_alive(pid)
    finally:
        assert processes.terminate(pid, SLEEPER)
    assert not processes.pid_alive(pid)
    assert not processes.terminate(pid, SLEEPER)


def test_without_proc_ownership_falls_back_to_ps(tmp_path: Path) -> None:
    pid = processes.spawn_detached(SLEEPER, tmp_path / "sleep.log")
    try:
        assert processes.is_our_process(pid, SLEEPER, proc=tmp_path)
        assert not processes.is_our_process(pid, [*SLEEPER, "x"], proc=tmp_path)
    finally:
        processes.terminate(pid, SLEEPER)


def test_dead_child_is_not_alive_even_before_reaping(tmp_path: Path) -> None:
    pid = processes.spawn_detached([sys.executable, "-c", "print('bye')"], tmp_path / "out.log")
    for _ in range(200):
        if not processes.pid_alive(pid):
            break
        __import__("time").sleep(0.02)
    assert not processes.pid_alive(pid)
    assert (tmp_path / "out.log").read_text().strip() == "bye"


def test_wait_for_port_fails_fast_when_the_process_exits(tmp_path: Path) -> None:
    log = tmp_path / "boom.log"
    pid = processes.spawn_detached([sys.executable, "-c", "raise SystemExit('address in use')"], log)
    with pytest.raises(LocalStackError, match=r"(?s)exited before port .* opened.*address in use"):
        processes.wait_for_port(processes.free_port(), pid=pid, timeout=20, log=log)


def test_zombie_detection_parses_proc_stat(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    (proc / "42").mkdir(parents=True)
    (proc / "42" / "stat").write_text("42 (weird ) name) Z 1 42 42 0")
    (proc / "43").mkdir()
    (proc / "43" / "stat").write_text("43 (tansu) S 1 43 43 0")
    assert processes.is_zombie(42, proc)
    assert not processes.is_zombie(43, proc)
    assert not processes.is_zombie(44, proc)


def test_default_state_dir_honours_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_state_dir({"KEYFAN_STATE_DIR": str(tmp_path)}) == tmp_path
    monkeypatch.chdir(tmp_path)
    assert default_state_dir({}) == tmp_path / ".keyfan"
