"""The plaintext twins of the crypto ports: the same seams, no encryption. For the benchmark only.

``PlaintextEncryptor`` and ``PlaintextDecryptor`` implement ``keyfan.crypto.ports`` so that the owner's and
the consumer's pipelines run unchanged with them; the difference in throughput is the cost of encryption.
They live here, never in a service's default wiring, and their records say so on the wire
(``keyfan-content: plaintext``), which the services' consumers refuse.

A plaintext value is framed like a (very) small Encryption SDK message: a header naming the key and the
encryption context, then the body. It carries the same facts a consumer checks (key ARN, context), so the
consumer pipeline's checks run on both paths alike::

    b"KFPT" | version (1 byte) | header length (2 bytes, big-endian) | header JSON | plaintext
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping

from keyfan.crypto.ports import Decrypted, Encrypted
from keyfan.envelope import CONTENT_PLAINTEXT, Binding
from keyfan.exceptions import ConfigError, CorruptMessage

MAGIC = b"KFPT"
VERSION = 1
_PREFIX = struct.Struct(">4sBH")


def frame(key_arn: str, context: Mapping[str, str], plaintext: bytes) -> bytes:
    header = json.dumps({"key_arn": key_arn, "context": dict(context)}, separators=(",", ":")).encode()
    return _PREFIX.pack(MAGIC, VERSION, len(header)) + header + plaintext


def unframe(value: bytes) -> tuple[str, dict[str, str], bytes]:
    """(key ARN, encryption context, plaintext) of a framed value; ``CorruptMessage`` if it is not one."""
    if len(value) < _PREFIX.size:
        raise CorruptMessage("bad_ciphertext", "not a plaintext benchmark frame (too short)")
    magic, version, length = _PREFIX.unpack_from(value)
    if magic != MAGIC or version != VERSION or len(value) < _PREFIX.size + length:
        raise CorruptMessage("bad_ciphertext", "not a plaintext benchmark frame")
    start = _PREFIX.size
    try:
        header = json.loads(value[start : start + length])
        key_arn, context = str(header["key_arn"]), {str(k): str(v) for k, v in header["context"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CorruptMessage("bad_ciphertext", "plaintext frame header is malformed") from exc
    return key_arn, context, value[start + length :]


class PlaintextEncryptor:
    """Satisfies ``Encryptor``: names the department's key, encrypts nothing."""

    def __init__(self, key_arns: Mapping[str, str]) -> None:
        if not key_arns:
            raise ConfigError("PlaintextEncryptor needs at least one department key ARN")
        self._key_arns = dict(key_arns)

    content = CONTENT_PLAINTEXT

    def encrypt(self, binding: Binding, plaintext: bytes) -> Encrypted:
        try:
            key_arn = self._key_arns[binding.department]
        except KeyError:
            raise ConfigError(f"no key configured for department {binding.department!r}") from None
        value = frame(key_arn, binding.encryption_context(), plaintext)
        return Encrypted(ciphertext=value, key_arn=key_arn, content=CONTENT_PLAINTEXT)

    def encrypt_cached(self, binding: Binding, plaintext: bytes) -> Encrypted:
        """Never blocks: the owner pipeline frames inline, as it seals v2 under a cached key."""
        return self.encrypt(binding, plaintext)


class PlaintextDecryptor:
    """Satisfies ``Decryptor``: reads the frame back (there is no plaintext twin of an access denial)."""

    content = CONTENT_PLAINTEXT

    def key_arns(self, ciphertext: bytes) -> tuple[str, ...]:
        return (unframe(ciphertext)[0],)

    def decrypt(self, ciphertext: bytes, binding: Binding) -> Decrypted:
        key_arn, context, plaintext = unframe(ciphertext)
        return Decrypted(plaintext=plaintext, encryption_context=context, key_arn=key_arn)

    def decrypt_cached(self, ciphertext: bytes, binding: Binding) -> Decrypted:
        """Never blocks: the consumer pipeline unframes inline, as it opens v2 under a cached key."""
        return self.decrypt(ciphertext, binding)
