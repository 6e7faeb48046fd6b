"""The public surface is what ``keyfan.__all__`` says, every name resolves, and nothing else leaks in."""

from __future__ import annotations

import importlib.metadata

import keyfan


def test_every_exported_name_resolves() -> None:
    missing = [name for name in keyfan.__all__ if getattr(keyfan, name, None) is None]
    assert missing == []


def test_export_list_is_unique() -> None:
    # Its order is kept by ruff (RUF022), which `make lint` runs.
    assert len(set(keyfan.__all__)) == len(keyfan.__all__)


def test_exceptions_share_one_root() -> None:
    errors = [getattr(keyfan, n) for n in keyfan.__all__ if isinstance(getattr(keyfan, n), type)]
    exceptions = [e for e in errors if issubclass(e, BaseException)]
    assert exceptions
    assert all(issubclass(e, keyfan.KeyfanError) for e in exceptions)


def test_version_matches_the_distribution() -> None:
    assert keyfan.__version__ == importlib.metadata.version("keyfan")


def test_the_service_packages_export_what_they_list() -> None:
    import keyfan.consumer
    import keyfan.owner

    for package in (keyfan.owner, keyfan.consumer):
        assert [name for name in package.__all__ if getattr(package, name, None) is None] == []
