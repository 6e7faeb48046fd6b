"""The codec of personal fields sealed under a subject key: round trip, every byte flip, the AAD, and what
tells a shredded record (another key's commitment) from a tampered one (a failing tag)."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest

from keyfan.crypto import fields
from keyfan.crypto.fields import (
    COMMITMENT_BYTES,
    HEADER_BYTES,
    NONCE_BYTES,
    TAG_BYTES,
    SubjectKey,
    aad,
    open_fields,
    seal,
    sealed_by,
)
from keyfan.envelope import Binding
from keyfan.exceptions import CorruptMessage, TamperedMessage

RAW = bytes(range(32))
WHO = "ab" * 32
KEY = SubjectKey(RAW, department="sales", pseudonym=WHO)
BINDING = Binding("keyfan.events", "sales", "order.created", 1, "7f0c7c4e-1c8a-4a49-9d4c-2f1b7d9c0e11")
FIELDS = {"customer_name": "Ada Lovelace", "email": "ada@example.com"}
SEALED = seal(KEY, BINDING, FIELDS)


def _flipped(index: int) -> bytes:
    out = bytearray(SEALED)
    out[index] ^= 0x01
    return bytes(out)


def test_sealed_fields_open_to_the_same_fields() -> None:
    assert open_fields(KEY, BINDING, SEALED) == FIELDS
    assert sealed_by(KEY, SEALED)
    assert SEALED[0] == fields.VERSION and SEALED[1 : 1 + COMMITMENT_BYTES] == KEY.commitment
    assert len(SEALED) == HEADER_BYTES + len(json.dumps(FIELDS, separators=(",", ":"))) + TAG_BYTES
    assert b"Ada" not in SEALED and b"ada@example.com" not in SEALED


def test_the_same_fields_sealed_twice_differ() -> None:
    again = seal(KEY, BINDING, FIELDS)
    assert again != SEALED
    assert again[1 + COMMITMENT_BYTES : HEADER_BYTES] != SEALED[1 + COMMITMENT_BYTES : HEADER_BYTES]
    assert open_fields(KEY, BINDING, again) == FIELDS


def test_a_flipped_version_is_not_a_sealed_field_set() -> None:
    with pytest.raises(CorruptMessage) as caught:
        open_fields(KEY, BINDING, _flipped(0))
    assert not isinstance(caught.value, TamperedMessage) and caught.value.reason == "bad_personal"


@pytest.mark.parametrize("index", range(1, 1 + COMMITMENT_BYTES))
def test_a_flipped_commitment_names_another_key(index: int) -> None:
    # what a record sealed under a since-deleted key looks like: not this key's, so shredded, not tampered
    assert not sealed_by(KEY, _flipped(index))
    with pytest.raises(TamperedMessage) as caught:
        open_fields(KEY, BINDING, _flipped(index))
    assert caught.value.reason == "personal_bad_commitment"


@pytest.mark.parametrize("index", range(1 + COMMITMENT_BYTES, len(SEALED)))
def test_a_flipped_nonce_ciphertext_or_tag_is_tampering(index: int) -> None:
    where = "nonce" if index < HEADER_BYTES else "tag" if index >= len(SEALED) - TAG_BYTES else "ciphertext"
    assert sealed_by(KEY, _flipped(index)), where  # the commitment still matches ...
    with pytest.raises(TamperedMessage) as caught:  # ... so a failing tag means the bytes were changed
        open_fields(KEY, BINDING, _flipped(index))
    assert caught.value.reason == "personal_bad_tag", where


@pytest.mark.parametrize(
    "change",
    [
        {"topic": "other.topic"},
        {"department": "finance"},
        {"event_type": "order.cancelled"},
        {"schema_version": 2},
        {"event_id": "00000000-0000-0000-0000-000000000000"},
    ],
    ids=lambda change: next(iter(change)),
)
def test_the_aad_binds_every_field_of_the_binding(change: dict[str, object]) -> None:
    other = dataclasses.replace(BINDING, **change)  # type: ignore[arg-type]
    assert aad(other, WHO) != aad(BINDING, WHO)
    with pytest.raises(TamperedMessage) as caught:
        open_fields(KEY, other, SEALED)
    assert caught.value.reason == "personal_bad_tag"


def test_the_aad_binds_the_subject_pseudonym() -> None:
    # the same key bytes filed under another subject: same commitment, another AAD
    moved = SubjectKey(RAW, department="sales", pseudonym="cd" * 32)
    assert sealed_by(moved, SEALED)
    with pytest.raises(TamperedMessage) as caught:
        open_fields(moved, BINDING, SEALED)
    assert caught.value.reason == "personal_bad_tag"


def test_a_key_of_another_department_refuses_to_seal() -> None:
    finance = SubjectKey(RAW, department="finance", pseudonym=WHO)
    with pytest.raises(ValueError):
        seal(finance, BINDING, FIELDS)


def test_another_key_does_not_open_and_says_so_by_its_commitment() -> None:
    other = SubjectKey(os.urandom(32), department="sales", pseudonym=WHO)
    assert not sealed_by(other, SEALED)
    with pytest.raises(TamperedMessage) as caught:
        open_fields(other, BINDING, SEALED)
    assert caught.value.reason == "personal_bad_commitment"


@pytest.mark.parametrize(
    "length", [0, 1, COMMITMENT_BYTES, HEADER_BYTES, HEADER_BYTES + TAG_BYTES - 1, len(SEALED) - 1]
)
def test_truncated_input_is_corrupt(length: int) -> None:
    with pytest.raises(CorruptMessage):
        open_fields(KEY, BINDING, SEALED[:length])


def test_a_short_input_is_not_a_field_set_even_for_its_commitment() -> None:
    with pytest.raises(CorruptMessage) as caught:
        fields.commitment_of(SEALED[: HEADER_BYTES + TAG_BYTES - 1])
    assert caught.value.reason == "bad_personal"


@pytest.mark.parametrize("plaintext", [b"not json", b"[1, 2]"])
def test_an_authentic_plaintext_that_is_not_an_object_is_corrupt(plaintext: bytes) -> None:
    nonce = os.urandom(NONCE_BYTES)
    body = KEY._aead.encrypt(nonce, plaintext, aad(BINDING, WHO))
    sealed = bytes((fields.VERSION,)) + KEY.commitment + nonce + body
    with pytest.raises(CorruptMessage) as caught:
        open_fields(KEY, BINDING, sealed)
    assert caught.value.reason == "bad_personal" and not isinstance(caught.value, TamperedMessage)


def test_a_subject_key_shows_no_key_material() -> None:
    shown = repr(KEY)
    assert RAW.hex() not in shown and repr(RAW) not in shown and KEY.commitment.hex() not in shown
    assert WHO not in shown and "sales" in shown  # the pseudonym only abbreviated
    with pytest.raises(ValueError):
        SubjectKey(b"short", department="sales", pseudonym=WHO)
