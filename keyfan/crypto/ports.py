"""The seams: what the owner needs to encrypt and what a consumer needs to decrypt.

Real adapters are in ``keyfan.crypto.kms``; unit tests pass small fakes that satisfy these protocols.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from keyfan.envelope import CONTENT_ESDK


@dataclass(frozen=True, slots=True)
class Encrypted:
    ciphertext: bytes
    key_arn: str
    # What ``ciphertext`` is, for the ``keyfan-content`` header: an Encryption SDK message unless a
    # benchmark codec says otherwise.
    content: str = CONTENT_ESDK


@dataclass(frozen=True, slots=True)
class Decrypted:
    plaintext: bytes
    encryption_context: Mapping[str, str]
    key_arn: str


class Encryptor(Protocol):
    def encrypt(self, department: str, plaintext: bytes, context: Mapping[str, str]) -> Encrypted:
        """Encrypt under ``department``'s key; raises ``CryptoError`` subclasses only."""
        ...


class Decryptor(Protocol):
    def decrypt(self, ciphertext: bytes) -> Decrypted:
        """Decrypt with whatever key IAM lets us use; raises ``CryptoError`` subclasses only."""
        ...

    def key_arns(self, ciphertext: bytes) -> tuple[str, ...]:
        """The KMS keys a message is encrypted under, read from its header without calling KMS."""
        ...
