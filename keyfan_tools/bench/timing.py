"""Thin, thread-safe wrappers that time the crypto calls, so the results can say where the time goes.

They add two ``perf_counter`` calls per record on both codecs alike, and pass the KMS observer through.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

from keyfan.crypto import KmsObserver
from keyfan.crypto.ports import Decrypted, Decryptor, Encrypted, Encryptor


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

    def encrypt(self, department: str, plaintext: bytes, context: Mapping[str, str]) -> Encrypted:
        started = time.perf_counter()
        try:
            return self.inner.encrypt(department, plaintext, context)
        finally:
            self.timer.add(time.perf_counter() - started)


class TimedDecryptor:
    def __init__(self, inner: Decryptor) -> None:
        self.inner = inner
        self.timer = CallTimer()
        self.observer = getattr(inner, "observer", None)
        self.content = getattr(inner, "content", None)

    def key_arns(self, ciphertext: bytes) -> tuple[str, ...]:
        return self.inner.key_arns(ciphertext)

    def decrypt(self, ciphertext: bytes) -> Decrypted:
        started = time.perf_counter()
        try:
            return self.inner.decrypt(ciphertext)
        finally:
            self.timer.add(time.perf_counter() - started)
