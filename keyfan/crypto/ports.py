"""The seams: what the owner needs to encrypt and what a consumer needs to decrypt.

Each side has two calls: one that may block (a KMS call, or the signed suite's CPU-heavy signature), run in
a thread, and a ``*_cached`` one that never blocks and returns ``None`` when it would. A thread hop costs
80-350 µs here, far more than AES-GCM under a cached key (a few µs), so the pipelines try the cached call
inline first and hop only on ``None``.

Real adapters: ``keyfan.crypto.v2`` (wire v2, the default) and ``keyfan.crypto.kms`` (wire v1, the
Encryption SDK). Unit tests pass small fakes that satisfy these protocols.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from keyfan.envelope import CONTENT_ESDK, Binding


@dataclass(frozen=True, slots=True)
class Encrypted:
    ciphertext: bytes
    key_arn: str
    # What ``ciphertext`` is, for the ``keyfan-content`` header.
    content: str = CONTENT_ESDK


@dataclass(frozen=True, slots=True)
class Decrypted:
    plaintext: bytes
    # The context the plaintext was authenticated under: v1's encryption context, v2's bound fields.
    encryption_context: Mapping[str, str]
    key_arn: str


class Encryptor(Protocol):
    def encrypt(self, binding: Binding, plaintext: bytes) -> Encrypted:
        """Encrypt under ``binding.department``'s key; may block. Raises ``CryptoError`` subclasses only."""
        ...

    def encrypt_cached(self, binding: Binding, plaintext: bytes) -> Encrypted | None:
        """``encrypt`` without blocking, or ``None`` if it would block."""
        ...


class Decryptor(Protocol):
    # The ``keyfan-content`` this decryptor reads.
    content: str

    def key_arns(self, value: bytes) -> tuple[str, ...]:
        """The KMS keys a value is encrypted under, read from it without calling KMS."""
        ...

    def decrypt(self, value: bytes, binding: Binding) -> Decrypted:
        """Decrypt with whatever key IAM lets us use; may block. Raises ``CryptoError`` subclasses only."""
        ...

    def decrypt_cached(self, value: bytes, binding: Binding) -> Decrypted | None:
        """``decrypt`` without blocking, or ``None`` if it would block."""
        ...
