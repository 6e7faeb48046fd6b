"""The position rules and the bounded healing of gaps (pure, no Faust)."""

from __future__ import annotations

import pytest

from keyfan.consumer.position import (
    NO_POSITION,
    Arrival,
    Gap,
    Reseeks,
    SeekAction,
    advanced,
    arrival,
    new_slot,
)
from tests.factories import FakeClock


@pytest.mark.parametrize(
    ("position", "offset", "expected"),
    [
        (NO_POSITION, 0, Arrival.NEXT),
        (NO_POSITION, 1, Arrival.GAP),
        (36, 36, Arrival.REDELIVERED),
        (36, 12, Arrival.REDELIVERED),
        (36, 37, Arrival.NEXT),
        (36, 76, Arrival.GAP),
    ],
)
def test_arrival(position: int, offset: int, expected: Arrival) -> None:
    assert arrival(position, offset) is expected


def test_advancing_counts_one_outcome_and_keeps_or_replaces_the_state() -> None:
    slot = new_slot({"orders": 0})
    slot = advanced(slot, 0, "decrypted", {"orders": 1})
    slot = advanced(slot, 1, "access_denied")
    assert slot == {"position": 1, "state": {"orders": 1}, "outcomes": {"decrypted": 1, "access_denied": 1}}


def test_a_gap_is_sought_once_then_left_to_settle_then_sought_again() -> None:
    clock = FakeClock(100.0)
    reseeks = Reseeks(max_seeks=3, settle_seconds=2.0, clock=clock)
    gap = Gap(partition=0, expected=37, offset=76)
    assert reseeks.on_gap(gap) is SeekAction.SEEK
    # records fetched before the seek keep arriving: no new seek while it settles
    assert reseeks.on_gap(Gap(0, 37, 77)) is SeekAction.WAIT
    clock.now += 2.5
    assert reseeks.on_gap(gap) is SeekAction.SEEK


def test_a_gap_that_survives_every_seek_is_stepped_over() -> None:
    clock = FakeClock(100.0)
    reseeks = Reseeks(max_seeks=2, settle_seconds=1.0, clock=clock)
    gap = Gap(partition=1, expected=10, offset=12)
    actions = []
    for _ in range(3):
        actions.append(reseeks.on_gap(gap))
        clock.now += 1.5
    assert actions == [SeekAction.SEEK, SeekAction.SEEK, SeekAction.STEP_OVER]


def test_healing_or_a_rebalance_forgets_pending_seeks() -> None:
    clock = FakeClock(100.0)
    reseeks = Reseeks(clock=clock)
    assert reseeks.on_gap(Gap(0, 5, 9)) is SeekAction.SEEK
    reseeks.healed(0)
    assert reseeks.on_gap(Gap(0, 5, 9)) is SeekAction.SEEK
    reseeks.reset()
    assert reseeks.on_gap(Gap(0, 5, 9)) is SeekAction.SEEK
    # a different gap on the same partition starts its own count
    assert reseeks.on_gap(Gap(0, 6, 9)) is SeekAction.SEEK
