"""Wire format v2, the codec: one record's value sealed with AES-256-GCM under a cached data key. Pure, no I/O.

What the owner writes by default (``KEYFAN_WIRE=v2``); the KMS edge is ``keyfan.crypto.datakeys`` and the
ports adapters ``keyfan.crypto.v2``. Layout, all integers big-endian (docs/architecture.md, "Wire v2", has the table another language implements)::

    u8  version   = 0x02
    u8  kind      = 0x01            key reference: a department data key wrapped by KMS
    u16 A, A bytes                  the KMS key ARN (UTF-8) that wrapped the data key
    u16 W, W bytes                  the wrapped data key: KMS's CiphertextBlob, as GenerateDataKey returned it
    32 bytes                        key commitment
    12 bytes                        nonce (random per record)
    rest                            AES-256-GCM ciphertext followed by its 16-byte tag

Everything after ``kind`` belongs to kind 0x01; another kind would define its own
key reference and may reuse the rest.

Per data key (once, then cached with it): HKDF-SHA-512 over the 32-byte data key, with a fixed salt and two
distinct info labels, gives the AES-256-GCM key and a 32-byte commitment. The commitment travels in every
record and is compared (constant time) before decrypting, so a record cannot open under any key but the one
it was sealed with (key commitment, as the Encryption SDK's ``COMMIT_KEY`` suites give, at no per-record
cost). Why a fixed salt rather than one from the wrapped key: the input is a full-entropy key from KMS, so
HKDF's extract step needs no salt to do its job (RFC 5869, section 3.1), and a fixed salt keeps both
derivations a function of the data key alone; the commitment then names the key itself, whichever blob
wraps it, and the binding to the blob is the AAD's job (it carries a digest of the wrapped key).

The AAD is never stored; both sides build it from what the record claims (``Binding`` from the headers, key
ARN and wrapped key from the value). Each field is a u32 length and its UTF-8 bytes, so no field can run
into the next; the wrapped key enters as its SHA-256 (fixed size)::

    0x02 | 0x01 | topic | department | event_type | str(schema_version) | event_id | key_arn | sha256(wrapped)

Errors (all ``keyfan.exceptions``, raised ``from`` the original where there is one):
``CorruptMessage("bad_envelope")`` when the bytes do not parse as this layout,
``TamperedMessage("bad_commitment")`` when the record's commitment is not the data key's,
``TamperedMessage("bad_tag")`` when AES-GCM authentication fails (the ciphertext, nonce, tag or any bound
field changed).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from keyfan.envelope import Binding
from keyfan.exceptions import CorruptMessage, TamperedMessage

WIRE_VERSION = 0x02
KIND_KMS_DATA_KEY = 0x01  # a department data key wrapped by KMS (personal fields travel inside the body)

DATA_KEY_BYTES = 32
COMMITMENT_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
# KMS's own limits: a KeyId is at most 2048 characters, a CiphertextBlob 1 to 6144 bytes. Longer values cannot
# have come from the owner, and would make KMS refuse the request as malformed rather than answer about the key.
MAX_KEY_ARN_BYTES = 2048
MAX_WRAPPED_KEY_BYTES = 6144

# A KMS key ARN (never an alias: the owner writes the KeyId that GenerateDataKey answered with).
KMS_KEY_ARN = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):kms:(?P<region>[a-z0-9-]+):(?P<account>[0-9]{12}):key/[A-Za-z0-9-]+"
)

HKDF_SALT = b"keyfan/wire-v2"
INFO_ENCRYPTION_KEY = b"keyfan/wire-v2/kind-1/aes-256-gcm-key"
INFO_COMMITMENT = b"keyfan/wire-v2/kind-1/commitment"

_PREFIX = bytes((WIRE_VERSION, KIND_KMS_DATA_KEY))
_FIXED_BYTES = 2 + 2 + 2 + COMMITMENT_BYTES + NONCE_BYTES + TAG_BYTES  # everything but ARN, blob, ciphertext


@dataclass(frozen=True, slots=True)
class Envelope:
    """A v2 value split into its parts; nothing verified yet (``parse`` only checks the layout)."""

    key_arn: str
    wrapped_key: bytes
    commitment: bytes
    nonce: bytes
    ciphertext: bytes  # with the 16-byte tag at its end

    def to_bytes(self) -> bytes:
        """The value: the one encoder of the layout (``parse`` is its inverse)."""
        arn = self.key_arn.encode("utf-8")
        return b"".join(
            (
                _PREFIX,
                len(arn).to_bytes(2, "big"),
                arn,
                len(self.wrapped_key).to_bytes(2, "big"),
                self.wrapped_key,
                self.commitment,
                self.nonce,
                self.ciphertext,
            )
        )


class DataKey:
    """One data key's derivations: the AES-GCM key, the commitment, and the AAD tail naming its reference.

    The plaintext data key is used once, to derive, and not kept; neither it nor the derived key appears in
    ``repr``, so a data key logged by mistake shows only which key it is.
    """

    __slots__ = ("_aad_tail", "_aead", "commitment", "key_arn", "wrapped_key")

    def __init__(self, plaintext_key: bytes, *, key_arn: str, wrapped_key: bytes) -> None:
        if len(plaintext_key) != DATA_KEY_BYTES:
            raise ValueError(f"a data key is {DATA_KEY_BYTES} bytes (KMS KeySpec AES_256)")
        if not KMS_KEY_ARN.fullmatch(key_arn) or len(key_arn.encode("utf-8")) > MAX_KEY_ARN_BYTES:
            raise ValueError(f"not a KMS key ARN that fits the v2 layout: {key_arn!r}")
        if not 0 < len(wrapped_key) <= MAX_WRAPPED_KEY_BYTES:
            raise ValueError(f"a wrapped key is 1 to {MAX_WRAPPED_KEY_BYTES} bytes")
        self.key_arn = key_arn
        self.wrapped_key = bytes(wrapped_key)
        self.commitment = _hkdf(plaintext_key, INFO_COMMITMENT, COMMITMENT_BYTES)
        self._aead = AESGCM(_hkdf(plaintext_key, INFO_ENCRYPTION_KEY, DATA_KEY_BYTES))
        self._aad_tail = _aad_tail(key_arn, self.wrapped_key)

    def __repr__(self) -> str:
        digest = hashlib.sha256(self.wrapped_key).hexdigest()[:12]
        return f"DataKey(key_arn={self.key_arn!r}, wrapped_sha256={digest}...)"


def _hkdf(key: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA512(), length=length, salt=HKDF_SALT, info=info).derive(key)


def _field(value: bytes) -> bytes:
    return len(value).to_bytes(4, "big") + value


def _aad_tail(key_arn: str, wrapped_key: bytes) -> bytes:
    return _field(key_arn.encode("utf-8")) + hashlib.sha256(wrapped_key).digest()


def _aad(binding: Binding, tail: bytes) -> bytes:
    return b"".join(
        (
            _PREFIX,
            _field(binding.topic.encode("utf-8")),
            _field(binding.department.encode("utf-8")),
            _field(binding.event_type.encode("utf-8")),
            _field(str(binding.schema_version).encode("ascii")),
            _field(binding.event_id.encode("utf-8")),
            tail,
        )
    )


def aad(binding: Binding, *, key_arn: str, wrapped_key: bytes) -> bytes:
    """The additional authenticated data for a record (exposed for tests and other implementations)."""
    return _aad(binding, _aad_tail(key_arn, wrapped_key))


def seal(key: DataKey, binding: Binding, plaintext: bytes) -> bytes:
    """The v2 value of one record. ``key`` must be ``binding.department``'s data key (the caller's job:
    ``SessionDataKeys.seal`` picks it by department). A fresh random nonce per call."""
    return _seal(key, binding, plaintext, os.urandom(NONCE_BYTES))


def _seal(key: DataKey, binding: Binding, plaintext: bytes, nonce: bytes) -> bytes:
    return Envelope(
        key_arn=key.key_arn,
        wrapped_key=key.wrapped_key,
        commitment=key.commitment,
        nonce=nonce,
        ciphertext=key._aead.encrypt(nonce, plaintext, _aad(binding, key._aad_tail)),
    ).to_bytes()


def parse(value: bytes) -> Envelope:
    """Split a v2 value into its parts, checking the layout only; ``CorruptMessage("bad_envelope")`` if the
    bytes are not one. No key is needed: a consumer reads the key reference from here before asking KMS."""
    try:
        return _parse(value if type(value) is bytes else bytes(value))
    except CorruptMessage:
        raise
    except (ValueError, TypeError, IndexError) as exc:  # UnicodeDecodeError is a ValueError
        raise CorruptMessage("bad_envelope", f"not a wire v2 value: {type(exc).__name__}") from exc


def _parse(value: bytes) -> Envelope:
    if len(value) < _FIXED_BYTES + 2:  # the smallest ARN and wrapped key are a byte each, at the very least
        raise CorruptMessage("bad_envelope", f"{len(value)} bytes is too short for a wire v2 value")
    if value[0] != WIRE_VERSION:
        raise CorruptMessage("bad_envelope", f"wire version byte is {value[0]:#04x}, not {WIRE_VERSION:#04x}")
    if value[1] != KIND_KMS_DATA_KEY:
        raise CorruptMessage("bad_envelope", f"unknown key-reference kind {value[1]:#04x}")
    arn_length = int.from_bytes(value[2:4], "big")
    if not 0 < arn_length <= MAX_KEY_ARN_BYTES:
        raise CorruptMessage("bad_envelope", f"key ARN length {arn_length} out of range")
    at = 4 + arn_length
    key_arn = value[4:at].decode("utf-8")
    if not KMS_KEY_ARN.fullmatch(key_arn):
        raise CorruptMessage("bad_envelope", "the key reference is not a KMS key ARN")
    wrapped_length = int.from_bytes(value[at : at + 2], "big")
    if not 0 < wrapped_length <= MAX_WRAPPED_KEY_BYTES:
        raise CorruptMessage("bad_envelope", f"wrapped key length {wrapped_length} out of range")
    wrapped_at = at + 2
    commitment_at = wrapped_at + wrapped_length
    nonce_at = commitment_at + COMMITMENT_BYTES
    ciphertext_at = nonce_at + NONCE_BYTES
    if len(value) - ciphertext_at < TAG_BYTES:
        raise CorruptMessage("bad_envelope", "the value ends before its authentication tag")
    return Envelope(
        key_arn=key_arn,
        wrapped_key=value[wrapped_at:commitment_at],
        commitment=value[commitment_at:nonce_at],
        nonce=value[nonce_at:ciphertext_at],
        ciphertext=value[ciphertext_at:],
    )


def open_envelope(key: DataKey, envelope: Envelope, binding: Binding) -> bytes:
    """The plaintext, once the commitment and then the AES-GCM tag verify against ``binding``.

    ``key`` is whatever the KMS step unwrapped from ``envelope.wrapped_key``; the AAD is built from the key
    reference the *record* carries, so a record re-labelled with another ARN or blob does not open.
    """
    if not hmac.compare_digest(envelope.commitment, key.commitment):
        raise TamperedMessage("bad_commitment", "the record is not committed to this data key")
    if envelope.key_arn == key.key_arn and envelope.wrapped_key == key.wrapped_key:
        tail = key._aad_tail
    else:
        tail = _aad_tail(envelope.key_arn, envelope.wrapped_key)
    try:
        return key._aead.decrypt(envelope.nonce, envelope.ciphertext, _aad(binding, tail))
    except InvalidTag as exc:
        raise TamperedMessage("bad_tag", "authentication tag does not verify") from exc
