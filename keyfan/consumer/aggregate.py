"""Small pure helpers for handlers: exact money sums in JSON-friendly state (decimal strings)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any


def add_money(totals: Mapping[str, str], key: str, amount: Decimal) -> dict[str, str]:
    """A copy of ``totals`` with ``amount`` added under ``key`` (amounts stay exact decimal strings)."""
    out = dict(totals)
    out[key] = str(Decimal(out.get(key, "0")) + amount)
    return out


def add_nested_money(
    totals: Mapping[str, Mapping[str, str]], key: str, sub: str, amount: Decimal
) -> dict[str, Any]:
    out = {k: dict(v) for k, v in totals.items()}
    out[key] = add_money(out.get(key, {}), sub, amount)
    return out


def merge_money(parts: Iterable[Mapping[str, str]]) -> dict[str, str]:
    totals: dict[str, Decimal] = {}
    for part in parts:
        for key, value in part.items():
            totals[key] = totals.get(key, Decimal("0")) + Decimal(value)
    return {key: str(totals[key]) for key in sorted(totals)}


def merge_nested_money(parts: Iterable[Mapping[str, Mapping[str, str]]]) -> dict[str, dict[str, str]]:
    grouped: dict[str, list[Mapping[str, str]]] = {}
    for part in parts:
        for key, value in part.items():
            grouped.setdefault(key, []).append(value)
    return {key: merge_money(grouped[key]) for key in sorted(grouped)}


def merge_counts(parts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for part in parts:
        for key, value in part.items():
            totals[key] = totals.get(key, 0) + int(value)
    return dict(sorted(totals.items()))
