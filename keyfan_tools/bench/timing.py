"""Thin, thread-safe wrappers that time the crypto calls, so the results can say where the time goes.

They add two ``perf_counter`` calls per record on both codecs alike, and pass the KMS observer through.
Both calls of each port are timed (the inline ``*_cached`` one and the blocking one); a ``None`` from the
cached call is timed too, as it is part of the cost.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from keyfan.crypto import KmsObserver
from keyfan.crypto.ports import Decrypted, Decryptor, Encrypted, Encryptor
from keyfan.envelope import Binding

T = TypeVar("T")


class CallTimer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls = 0
        self.seconds = 0.0

    def add(self, seconds: float) -> None:
        with self._lock:
            self.calls += 1
            self.seconds += seconds

    def reset(self) -> None:
        with self._lock:
            self.calls = 0
            self.seconds = 0.0

    @property
    def mean_ms(self) -> float:
        return 1000.0 * self.seconds / self.calls if self.calls else 0.0

    def share_of(self, wall_seconds: float) -> float:
        """Time in the calls (summed over threads) / ``wall_seconds``."""
        return self.seconds / wall_seconds if wall_seconds > 0 else 0.0

    def timed(self, call: Callable[[], T]) -> T:
        started = time.perf_counter()
        try:
            return call()
        finally:
            self.add(time.perf_counter() - started)


def kms_calls(codec: object) -> int:
    """KMS calls so far, from the adapter's own ``KmsObserver`` (0 for a plaintext twin)."""
    observer = getattr(codec, "observer", None)
    return observer.total_calls if isinstance(observer, KmsObserver) else 0


def kms_calls_by_operation(codec: object) -> dict[str, int]:
    observer = getattr(codec, "observer", None)
    return dict(observer.calls) if isinstance(observer, KmsObserver) else {}


class TimedEncryptor:
    def __init__(self, inner: Encryptor) -> None:
        self.inner = inner
        self.timer = CallTimer()
        self.observer = getattr(inner, "observer", None)

    def encrypt(self, binding: Binding, plaintext: bytes) -> Encrypted:
        return self.timer.timed(lambda: self.inner.encrypt(binding, plaintext))

    def encrypt_cached(self, binding: Binding, plaintext: bytes) -> Encrypted | None:
        return self.timer.timed(lambda: self.inner.encrypt_cached(binding, plaintext))


class TimedDecryptor:
    def __init__(self, inner: Decryptor) -> None:
        self.inner = inner
        self.timer = CallTimer()
        self.observer = getattr(inner, "observer", None)
        self.content = inner.content

    def key_arns(self, ciphertext: bytes) -> tuple[str, ...]:
        return self.inner.key_arns(ciphertext)

    def decrypt(self, ciphertext: bytes, binding: Binding) -> Decrypted:
        return self.timer.timed(lambda: self.inner.decrypt(ciphertext, binding))

    def decrypt_cached(self, ciphertext: bytes, binding: Binding) -> Decrypted | None:
        return self.timer.timed(lambda: self.inner.decrypt_cached(ciphertext, binding))
