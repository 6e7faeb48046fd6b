"""How a figure is written in a table cell, and the Markdown table itself. Pure."""

from __future__ import annotations

from collections.abc import Sequence


def size_label(size: int) -> str:
    if size >= 1024 and size % 1024 == 0:
        return f"{size // 1024} KB"
    return f"{size} B"


def num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def ratio_text(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def met_text(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "**no**")


def percent_number(value: float) -> str:
    return f"{100 * value:.2f}" if value < 0.01 else f"{100 * value:.1f}"


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{percent_number(value)} %"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines
