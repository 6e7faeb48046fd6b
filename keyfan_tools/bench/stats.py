"""Pure statistics for the benchmark: percentiles, medians, ratios, rates. No I/O."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation between closest ranks (NumPy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError("q must be within [0, 100]")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    if low == high:
        return float(ordered[low])
    return float(ordered[low] + (ordered[high] - ordered[low]) * (position - low))


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def ratio(value: float, baseline: float) -> float | None:
    """``value / baseline``; None when the baseline is zero (no meaningful ratio)."""
    if baseline == 0:
        return None
    return value / baseline


def paired_ratios(values: Sequence[float], baselines: Sequence[float]) -> list[float | None]:
    """Run-by-run ratios: each value against its twin from the same run."""
    if len(values) != len(baselines):
        raise ValueError("paired ratios need as many baselines as values")
    return [ratio(v, b) for v, b in zip(values, baselines, strict=True)]


def median_or_none(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return median(present) if present else None


def rate(count: int, seconds: float) -> float:
    """Records per second; 0 for an empty or instantaneous interval."""
    return count / seconds if seconds > 0 and count > 0 else 0.0


def per_thousand(calls: int, records: int) -> float:
    """KMS calls per 1,000 records."""
    return 1000.0 * calls / records if records > 0 else 0.0
