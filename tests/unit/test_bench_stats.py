"""The benchmark's pure statistics: percentiles, medians, paired ratios, rates."""

from __future__ import annotations

import pytest

from keyfan_tools.bench.stats import (
    median,
    median_or_none,
    paired_ratios,
    per_thousand,
    percentile,
    rate,
    ratio,
)


def test_percentile_interpolates_between_closest_ranks_like_numpy():
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(values, 50) == 2.5
    assert percentile(values, 99) == pytest.approx(3.97)


def test_percentile_ignores_input_order_and_handles_one_value():
    assert percentile([9.0, 1.0, 5.0], 50) == 5.0
    assert percentile([7.0], 99) == 7.0


def test_percentile_refuses_empty_input_and_out_of_range_q():
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_median_of_odd_and_even_counts():
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 2.0, 3.0]) == 2.5


def test_ratio_and_paired_ratios_pair_each_run_with_its_own_twin():
    assert ratio(90.0, 100.0) == pytest.approx(0.9)
    assert ratio(1.0, 0.0) is None
    assert paired_ratios([50.0, 90.0, 80.0], [100.0, 100.0, 0.0]) == [0.5, 0.9, None]
    with pytest.raises(ValueError):
        paired_ratios([1.0], [1.0, 2.0])


def test_median_or_none_skips_missing_ratios():
    assert median_or_none([None, 0.5, 0.7]) == pytest.approx(0.6)
    assert median_or_none([None]) is None


def test_rate_and_per_thousand():
    assert rate(500, 2.0) == 250.0
    assert rate(10, 0.0) == 0.0
    assert per_thousand(2, 20_000) == pytest.approx(0.1)
    assert per_thousand(3, 0) == 0.0
