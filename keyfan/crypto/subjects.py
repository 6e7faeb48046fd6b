"""Subject keys for crypto-shredding: the key hierarchy below KMS. Pure, no I/O.

The flow (docs/architecture.md, "Crypto-shredding"): each department has a *wrapping key*, a KMS data key
kept KMS-wrapped in the key table and unwrapped once per process; each subject (the person an event is about)
has a random 256-bit *subject key*, kept in the same table wrapped under the department's wrapping key. So a
subject key costs no KMS call, and reading one still needs ``kms:Decrypt`` on the department key. Deleting a
subject's table entry shreds every personal field sealed under its key.

This module holds what both sides compute from a wrapping key, and nothing else:

* ``pseudonym``: the table key of a subject, an HMAC of its id under a key derived from the wrapping key,
  so neither the table nor the topic holds the plain identifier, and nobody without ``kms:Decrypt`` on the
  department key can tell which subject an entry is;
* ``wrap`` / ``unwrap``: a subject key sealed with AES-256-GCM under a key derived from the wrapping key,
  its additional data binding the department and the pseudonym, so an entry moved to another subject or
  department does not open.

Layout of a wrapped subject key: ``0x01 | 12-byte nonce | 32-byte ciphertext | 16-byte tag`` (61 bytes).
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from keyfan.exceptions import CorruptMessage, TamperedMessage

KEY_BYTES = 32
NONCE_BYTES = 12
WRAP_VERSION = 0x01
WRAPPED_BYTES = 1 + NONCE_BYTES + KEY_BYTES + 16

HKDF_SALT = b"keyfan/subject-keys"
INFO_WRAP = b"keyfan/subject-keys/aes-256-gcm-wrap"
INFO_PSEUDONYM = b"keyfan/subject-keys/pseudonym"


def _derive(wrapping_key: bytes, info: bytes) -> bytes:
    if len(wrapping_key) != KEY_BYTES:
        raise ValueError(f"a wrapping key is {KEY_BYTES} bytes (KMS KeySpec AES_256)")
    return HKDF(algorithm=hashes.SHA512(), length=KEY_BYTES, salt=HKDF_SALT, info=info).derive(wrapping_key)


class WrappingKey:
    """A department's wrapping key, as its two derivations; the key itself is not kept (nor shown)."""

    __slots__ = ("_aead", "_pseudonym_key", "department")

    def __init__(self, plaintext_key: bytes, *, department: str) -> None:
        self.department = department
        self._aead = AESGCM(_derive(plaintext_key, INFO_WRAP))
        self._pseudonym_key = _derive(plaintext_key, INFO_PSEUDONYM)

    def __repr__(self) -> str:
        return f"WrappingKey(department={self.department!r})"

    def pseudonym(self, subject: str) -> str:
        """The subject's table key: HMAC-SHA-256 of its id, hex (the same subject always maps to it)."""
        return hmac.new(self._pseudonym_key, subject.encode("utf-8"), hashlib.sha256).hexdigest()

    def new_subject_key(self) -> bytes:
        return os.urandom(KEY_BYTES)

    def wrap(self, pseudonym: str, subject_key: bytes) -> bytes:
        if len(subject_key) != KEY_BYTES:
            raise ValueError(f"a subject key is {KEY_BYTES} bytes")
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, subject_key, self._aad(pseudonym))
        return bytes((WRAP_VERSION,)) + nonce + sealed

    def unwrap(self, pseudonym: str, wrapped: bytes) -> bytes:
        """The subject key; ``CorruptMessage`` if the bytes are not a wrapped key, ``TamperedMessage`` if
        they were made for another subject, department or wrapping key."""
        if len(wrapped) != WRAPPED_BYTES or wrapped[0] != WRAP_VERSION:
            raise CorruptMessage("bad_subject_key", "not a wrapped subject key")
        nonce, sealed = wrapped[1 : 1 + NONCE_BYTES], wrapped[1 + NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, sealed, self._aad(pseudonym))
        except InvalidTag as exc:
            raise TamperedMessage("subject_key_mismatch", "the wrapped key is not this subject's") from exc

    def _aad(self, pseudonym: str) -> bytes:
        department = self.department.encode("utf-8")
        return bytes((WRAP_VERSION,)) + len(department).to_bytes(4, "big") + department + pseudonym.encode()
