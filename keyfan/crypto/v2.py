"""Wire v2 behind the ports: the owner's session-key encryptor and a consumer's data-key decryptor.

Thin on purpose: the layout is ``wire2``'s and every KMS call, cache and translation is ``datakeys``'s.
The ``*_cached`` calls seal and open on the caller's thread when the data key is at hand (the common case:
one KMS call per data key per rotation or cache age) and say ``None`` when a KMS call is due.
"""

from __future__ import annotations

from keyfan.crypto import wire2
from keyfan.crypto.datakeys import DataKeyCache, SessionDataKeys
from keyfan.crypto.ports import Decrypted, Encrypted
from keyfan.envelope import CONTENT_V2, Binding


class SessionKeyEncryptor:
    """Satisfies ``Encryptor``: each record sealed under its department's current session data key."""

    content = CONTENT_V2

    def __init__(self, keys: SessionDataKeys) -> None:
        self.keys = keys
        self.observer = keys.observer

    def encrypt(self, binding: Binding, plaintext: bytes) -> Encrypted:
        return self._sealed(self.keys.data_key(binding.department), binding, plaintext)

    def encrypt_cached(self, binding: Binding, plaintext: bytes) -> Encrypted | None:
        key = self.keys.cached_key(binding.department)
        return None if key is None else self._sealed(key, binding, plaintext)

    @staticmethod
    def _sealed(key: wire2.DataKey, binding: Binding, plaintext: bytes) -> Encrypted:
        return Encrypted(wire2.seal(key, binding, plaintext), key_arn=key.key_arn, content=CONTENT_V2)


class DataKeyDecryptor:
    """Satisfies ``Decryptor`` for ``keyfan-v2`` values: data keys unwrapped by KMS (discovery), cached."""

    content = CONTENT_V2

    def __init__(self, cache: DataKeyCache) -> None:
        self.cache = cache
        self.observer = cache.observer
        # The pipeline asks for a value's key ARNs, then decrypts the same value: parse it once.
        self._parsed: tuple[bytes, wire2.Envelope] | None = None

    def key_arns(self, value: bytes) -> tuple[str, ...]:
        return (self._parse(value).key_arn,)

    def decrypt(self, value: bytes, binding: Binding) -> Decrypted:
        envelope = self._parse(value)
        return self._opened(self.cache.data_key(envelope, binding.department), envelope, binding)

    def decrypt_cached(self, value: bytes, binding: Binding) -> Decrypted | None:
        envelope = self._parse(value)
        key = self.cache.cached_key(envelope, binding.department)
        return None if key is None else self._opened(key, envelope, binding)

    def _parse(self, value: bytes) -> wire2.Envelope:
        last = self._parsed  # read once: ``decrypt`` may run in a thread
        if last is not None and last[0] is value:
            return last[1]
        envelope = wire2.parse(value)
        self._parsed = (value, envelope)
        return envelope

    @staticmethod
    def _opened(key: wire2.DataKey, envelope: wire2.Envelope, binding: Binding) -> Decrypted:
        plaintext = wire2.open_envelope(key, envelope, binding)
        return Decrypted(plaintext, encryption_context=binding.encryption_context(), key_arn=envelope.key_arn)
