"""Personal fields sealed under their subject's key: the codec. Pure, no I/O.

The owner splits a payload (``keyfan.personal_data``) and seals its personal fields here, under the key of
the event's subject (``keyfan.crypto.subjectkeys`` finds or makes it); the sealed bytes travel inside the
record's body, which wire v2 (or v1) then seals as a whole under the department's key. So reading a personal
field takes the department key *and* the subject's key, and deleting the subject's key (``keyfan forget``)
shreds that field in every record ever written, while the rest of each record stays readable.

Layout (docs/architecture.md, "Crypto-shredding")::

    u8  version   = 0x01
    32 bytes      key commitment: names the subject key that sealed these bytes
    12 bytes      nonce (random per record)
    rest          AES-256-GCM ciphertext of the fields as compact JSON, followed by its 16-byte tag

AAD, built by both sides from what the record claims, each field a u32 length and its UTF-8 bytes::

    0x01 | topic | department | event_type | str(schema_version) | event_id | subject pseudonym

The commitment is what tells *shredded* from *tampered*. A forgotten subject that comes back gets a new
key; its old records then carry the old key's commitment, which no longer matches: the key that sealed them
is gone, so they read as shredded, not as an attack. Only when the commitment matches and the tag still
fails were the bytes changed (``TamperedMessage``).
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from keyfan.envelope import Binding
from keyfan.exceptions import CorruptMessage, TamperedMessage

VERSION = 0x01
KEY_BYTES = 32
COMMITMENT_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
HEADER_BYTES = 1 + COMMITMENT_BYTES + NONCE_BYTES

HKDF_SALT = b"keyfan/personal-fields"
INFO_ENCRYPTION_KEY = b"keyfan/personal-fields/aes-256-gcm-key"
INFO_COMMITMENT = b"keyfan/personal-fields/commitment"


def _hkdf(key: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA512(), length=KEY_BYTES, salt=HKDF_SALT, info=info).derive(key)


class SubjectKey:
    """One subject key's derivations (AES-GCM key and commitment); the key itself is not kept nor shown."""

    __slots__ = ("_aead", "commitment", "department", "pseudonym")

    def __init__(self, plaintext_key: bytes, *, department: str, pseudonym: str) -> None:
        if len(plaintext_key) != KEY_BYTES:
            raise ValueError(f"a subject key is {KEY_BYTES} bytes")
        self.department = department
        self.pseudonym = pseudonym
        self.commitment = _hkdf(plaintext_key, INFO_COMMITMENT)
        self._aead = AESGCM(_hkdf(plaintext_key, INFO_ENCRYPTION_KEY))

    def __repr__(self) -> str:
        return f"SubjectKey(department={self.department!r}, pseudonym={self.pseudonym[:12]}...)"


def _field(value: str) -> bytes:
    raw = value.encode("utf-8")
    return len(raw).to_bytes(4, "big") + raw


def aad(binding: Binding, pseudonym: str) -> bytes:
    """The additional authenticated data of one record's personal fields (exposed for tests)."""
    return bytes((VERSION,)) + b"".join(
        _field(part)
        for part in (
            binding.topic,
            binding.department,
            binding.event_type,
            str(binding.schema_version),
            binding.event_id,
            pseudonym,
        )
    )


def seal(key: SubjectKey, binding: Binding, fields: Mapping[str, Any]) -> bytes:
    """The fields, sealed under ``key`` for this record only. A fresh random nonce per call."""
    if key.department != binding.department:
        raise ValueError("a subject key seals its own department's records only")
    nonce = os.urandom(NONCE_BYTES)
    plaintext = json.dumps(fields, separators=(",", ":"), sort_keys=True).encode("utf-8")
    sealed = key._aead.encrypt(nonce, plaintext, aad(binding, key.pseudonym))
    return bytes((VERSION,)) + key.commitment + nonce + sealed


def commitment_of(sealed: bytes) -> bytes:
    """The commitment of the key that sealed ``sealed``; ``CorruptMessage`` if it is not this layout."""
    if len(sealed) < HEADER_BYTES + TAG_BYTES or sealed[0] != VERSION:
        raise CorruptMessage("bad_personal", "the personal fields are not a sealed field set")
    return sealed[1 : 1 + COMMITMENT_BYTES]


def sealed_by(key: SubjectKey, sealed: bytes) -> bool:
    """Whether ``sealed`` was made under ``key`` (False: under a key since deleted, i.e. shredded)."""
    return hmac.compare_digest(commitment_of(sealed), key.commitment)


def open_fields(key: SubjectKey, binding: Binding, sealed: bytes) -> dict[str, Any]:
    """The fields again. The caller has checked ``sealed_by``: a failing tag now means tampering."""
    if not sealed_by(key, sealed):
        raise TamperedMessage("personal_bad_commitment", "the personal fields are not under this key")
    nonce = sealed[1 + COMMITMENT_BYTES : HEADER_BYTES]
    try:
        plaintext = key._aead.decrypt(nonce, sealed[HEADER_BYTES:], aad(binding, key.pseudonym))
    except InvalidTag as exc:
        raise TamperedMessage("personal_bad_tag", "the personal fields do not authenticate") from exc
    try:
        fields = json.loads(plaintext)
    except ValueError as exc:
        raise CorruptMessage("bad_personal", "the personal fields are not JSON") from exc
    if not isinstance(fields, dict):
        raise CorruptMessage("bad_personal", "the personal fields are not an object")
    return fields
