"""The registry of apps the core reads (entry points declared in pyproject.toml), as tooling uses it."""

from __future__ import annotations

import tomllib
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from keyfan.departments import DepartmentRegistry
from keyfan.exceptions import ConfigError
from keyfan.plugins import GENERATORS, HANDLERS, generator, handler_for, registered

ROOT = Path(__file__).resolve().parents[2]


def test_every_department_in_the_registry_has_a_handler() -> None:
    for name in DepartmentRegistry.load(ROOT / "departments.toml").names:
        handler = handler_for(name)
        assert handler.department == name
        assert handler.initial_state() == handler.initial_state()


def test_each_call_builds_a_new_handler() -> None:
    assert handler_for("sales") is not handler_for("sales")


def test_an_unregistered_department_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"no consumer handler registered for 'hr'.*finance, sales"):
        handler_for("hr")


def test_the_generator_is_registered() -> None:
    assert callable(generator())
    with pytest.raises(ConfigError, match="no generator registered for 'cron'"):
        generator("cron")


def test_a_handler_registered_under_another_department_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = EntryPoint("finance", "sales_consumer.handler:SalesHandler", HANDLERS)
    monkeypatch.setattr("keyfan.plugins.entry_points", lambda group, name=None: [wrong])
    with pytest.raises(ConfigError, match="registered for 'finance' is the 'sales' handler"):
        handler_for("finance")


def test_an_entry_point_that_does_not_load_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = EntryPoint("hr", "hr_consumer.handler:HrHandler", HANDLERS)
    monkeypatch.setattr("keyfan.plugins.entry_points", lambda group, name=None: [broken])
    with pytest.raises(ConfigError, match=r"registered for 'hr' \(hr_consumer.handler:HrHandler\) cannot be"):
        handler_for("hr")


def test_the_installed_entry_points_are_the_ones_pyproject_declares() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["entry-points"]
    # a difference means pyproject.toml changed since the last install: pip install --no-deps -e .
    assert registered(HANDLERS) == sorted(declared[HANDLERS])
    assert registered(GENERATORS) == sorted(declared[GENERATORS])
