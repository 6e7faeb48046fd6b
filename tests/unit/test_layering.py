"""The layers import downwards only: apps and tooling use the core; the core uses neither; tooling finds the
apps through entry points (``keyfan.plugins``), never by importing them.

    owner_service  sales_consumer  finance_consumer  lambda_generator     keyfan_tools (CLI, local, demo, bench)
                \\            |            |            /                 /
                 ------------------- keyfan (runtime core) ---------------

Checked on the source (every import statement, at any depth, including those under ``if TYPE_CHECKING``), so
a lazy import inside a function counts as much as one at the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ("owner_service", "sales_consumer", "finance_consumer", "lambda_generator")
TOOLING = "keyfan_tools"


def imported_modules(path: Path, package: str | None = None) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved against its package)."""
    package = package or ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def top_level(name: str) -> str:
    return name.split(".")[0]


def modules_of(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", modules_of("keyfan"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_runtime_core_imports_neither_tooling_nor_apps(path: Path) -> None:
    forbidden = {top_level(name) for name in imported_modules(path)} & {TOOLING, *APPS}
    assert not forbidden, f"{path.relative_to(ROOT)} imports {sorted(forbidden)}: the core must stand alone"


@pytest.mark.parametrize("path", modules_of(TOOLING), ids=lambda p: str(p.relative_to(ROOT)))
def test_tooling_never_imports_an_app(path: Path) -> None:
    forbidden = {top_level(name) for name in imported_modules(path)} & set(APPS)
    assert not forbidden, (
        f"{path.relative_to(ROOT)} imports {sorted(forbidden)}: find an app through keyfan.plugins "
        "(entry points) or start it as a process (python -m ...)"
    )


def test_the_check_sees_imports_at_any_depth(tmp_path: Path) -> None:
    # Given a core module whose only app and tooling imports are lazy or relative
    module = tmp_path / "probe.py"
    module.write_text(
        "def f():\n    from sales_consumer.handler import SalesHandler\n    import keyfan_tools.cli\n"
        "from ..tools import x\n",
        encoding="utf-8",
    )
    # Then every one is seen
    found = imported_modules(module, package="keyfan.consumer")
    assert {"sales_consumer.handler", "keyfan_tools.cli", "keyfan.tools"} <= found


def test_every_package_is_checked() -> None:
    assert len(modules_of("keyfan")) > 20 and len(modules_of(TOOLING)) > 20
