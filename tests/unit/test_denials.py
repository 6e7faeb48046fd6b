"""The denial memory, driven by a fake clock."""

from __future__ import annotations

import pytest

from keyfan.consumer.denials import DenialMemory
from tests.factories import FakeClock

A = "arn:aws:kms:us-east-1:1:key/a"
B = "arn:aws:kms:us-east-1:1:key/b"


def test_remembered_until_ttl_then_forgotten() -> None:
    clock = FakeClock(1000.0)
    memory = DenialMemory(30, clock=clock)
    # given a denial for key A
    memory.remember(A, "arn:aws:sts::1:assumed-role/sales/x")
    # then it is remembered just before the TTL
    clock.now += 29.9
    found = memory.lookup([A])
    assert found is not None and found.principal == "arn:aws:sts::1:assumed-role/sales/x"
    assert memory.active() == (A,)
    # and forgotten at the TTL, so the next record asks KMS again (a new grant takes effect)
    clock.now += 0.1
    assert memory.lookup([A]) is None
    assert memory.active() == ()


def test_one_usable_key_is_enough() -> None:
    memory = DenialMemory(30, clock=FakeClock(1000.0))
    memory.remember(A)
    assert memory.lookup([A, B]) is None
    memory.remember(B)
    assert memory.lookup([A, B]) is not None
    assert memory.lookup([]) is None


def test_forget_and_zero_ttl() -> None:
    clock = FakeClock(1000.0)
    memory = DenialMemory(0, clock=clock)
    memory.remember(A)
    assert memory.lookup([A]) is None
    memory = DenialMemory(10, clock=clock)
    memory.remember(A)
    memory.forget(A)
    assert memory.lookup([A]) is None
    with pytest.raises(ValueError):
        DenialMemory(-1)
