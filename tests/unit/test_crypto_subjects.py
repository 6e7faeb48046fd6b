"""The subject-key hierarchy below KMS (crypto-shredding, started): pseudonyms and wrapped subject keys."""

from __future__ import annotations

import os

import pytest

from keyfan.crypto.subjects import WRAPPED_BYTES, WrappingKey
from keyfan.exceptions import CorruptMessage, TamperedMessage

SALES = WrappingKey(b"\x01" * 32, department="sales")


def test_a_subject_has_one_stable_pseudonym_that_reveals_nothing_without_the_wrapping_key() -> None:
    assert SALES.pseudonym("C-1001") == SALES.pseudonym("C-1001")
    assert SALES.pseudonym("C-1001") != SALES.pseudonym("C-1002")
    assert "C-1001" not in SALES.pseudonym("C-1001") and len(SALES.pseudonym("C-1001")) == 64
    # another wrapping key (another department, or a rotated key) gives another pseudonym
    assert WrappingKey(b"\x02" * 32, department="sales").pseudonym("C-1001") != SALES.pseudonym("C-1001")


def test_a_wrapped_subject_key_opens_for_its_own_subject_only() -> None:
    key = SALES.new_subject_key()
    who = SALES.pseudonym("C-1001")
    wrapped = SALES.wrap(who, key)
    assert len(wrapped) == WRAPPED_BYTES and key not in wrapped
    assert SALES.unwrap(who, wrapped) == key
    assert SALES.wrap(who, key) != wrapped  # a fresh nonce each time
    # moved to another subject, another department, or opened with another wrapping key: refused
    with pytest.raises(TamperedMessage):
        SALES.unwrap(SALES.pseudonym("C-1002"), wrapped)
    with pytest.raises(TamperedMessage):
        WrappingKey(b"\x01" * 32, department="finance").unwrap(who, wrapped)
    with pytest.raises(TamperedMessage):
        WrappingKey(b"\x02" * 32, department="sales").unwrap(who, wrapped)


@pytest.mark.parametrize("index", range(WRAPPED_BYTES))
def test_a_bit_flipped_anywhere_in_a_wrapped_key_is_refused(index: int) -> None:
    who = SALES.pseudonym("C-1001")
    flipped = bytearray(SALES.wrap(who, os.urandom(32)))
    flipped[index] ^= 0x01
    with pytest.raises(CorruptMessage):  # TamperedMessage is a CorruptMessage
        SALES.unwrap(who, bytes(flipped))


def test_malformed_input_is_refused_and_nothing_secret_is_shown() -> None:
    with pytest.raises(CorruptMessage):
        SALES.unwrap(SALES.pseudonym("x"), b"\x01" * 10)
    with pytest.raises(ValueError):
        WrappingKey(b"short", department="sales")
    with pytest.raises(ValueError):
        SALES.wrap(SALES.pseudonym("x"), b"short")
    assert repr(SALES) == "WrappingKey(department='sales')"
