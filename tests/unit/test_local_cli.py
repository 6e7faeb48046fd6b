"""`keyfan local` without a stack: clear messages and exit codes, never a traceback."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from keyfan_tools.cli.local import local


def invoke(tmp_path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(local, ["--state-dir", str(tmp_path / "state"), *args])
    return result.exit_code, result.output


def test_status_of_no_stack(tmp_path: Path) -> None:
    code, out = invoke(tmp_path, "status")
    assert code == 1
    assert "not running" in out


def test_env_of_no_stack_is_a_clear_error(tmp_path: Path) -> None:
    code, out = invoke(tmp_path, "env")
    assert code == 1
    assert "keyfan local up" in out and "Traceback" not in out


def test_down_of_no_stack_is_harmless(tmp_path: Path) -> None:
    code, out = invoke(tmp_path, "down")
    assert code == 0
    assert "no local stack" in out


def test_up_with_a_bad_registry_starts_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "departments.toml"
    bad.write_text("[[department]]\nname = 'Sales'\n")
    result = CliRunner().invoke(
        local, ["--state-dir", str(tmp_path / "state"), "--departments-file", str(bad), "up"]
    )
    assert result.exit_code == 1
    assert "department 'Sales'" in result.output
    assert not (tmp_path / "state" / "state.json").exists()
