"""Thin, thread-safe wrappers that time the crypto calls, so the results can say where the time goes.

They add two ``perf_counter`` calls per record on both codecs alike, and pass the KMS observer through.
Both calls of each port are timed (the inline ``*_cached`` one and the blocking one); a ``None`` from the
cached call is timed too, as it is part of the cost.

For the field-level suite the owner's and a consumer's subject keys are wrapped the same way
(``TimedSubjectKeys``: sealing or opening personal fields, the key table's calls included), apart from the
department key's timer, and their table calls are read from the store's own count.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import TypeVar, cast

from keyfan.crypto import KmsObserver
from keyfan.crypto.ports import Decrypted, Decryptor, Encrypted, Encryptor
from keyfan.crypto.subjectkeys import Personal, SubjectKeys
from keyfan.envelope import Binding, SealedPersonal
from keyfan.models import DepartmentEvent

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


class TimedSubjectKeys:
    """``SubjectKeys`` with the calls the pipelines make timed (the owner's ``seal_body*``, a consumer's
    ``open*`` and ``prefetch``); everything else is the wrapped object's. Handed to the pipelines as
    ``port()``."""

    def __init__(self, inner: SubjectKeys) -> None:
        self.inner = inner
        self.store = inner.store
        self.timer = CallTimer()

    def port(self) -> SubjectKeys:
        """This object where a pipeline expects ``SubjectKeys`` (it calls only the five methods below)."""
        return cast(SubjectKeys, self)

    def table_calls(self) -> int:
        """DynamoDB calls so far (``SubjectKeyStore.table_calls``)."""
        return sum(self.store.table_calls().values())

    def seal_body_cached(self, event: DepartmentEvent, binding: Binding) -> bytes | None:
        return self.timer.timed(lambda: self.inner.seal_body_cached(event, binding))

    def seal_body(self, event: DepartmentEvent, binding: Binding) -> bytes:
        return self.timer.timed(lambda: self.inner.seal_body(event, binding))

    def open_cached(self, binding: Binding, sealed: SealedPersonal) -> Personal | None:
        return self.timer.timed(lambda: self.inner.open_cached(binding, sealed))

    def open(self, binding: Binding, sealed: SealedPersonal) -> Personal:
        return self.timer.timed(lambda: self.inner.open(binding, sealed))

    def prefetch(self, wanted: Iterable[tuple[str, SealedPersonal]]) -> int:
        return self.timer.timed(lambda: self.inner.prefetch(wanted))


def key_store_calls(codec: object) -> int:
    """Subject-key table calls so far of a codec's subject keys (0 without: v2, v1, the plaintext twin)."""
    keys = getattr(codec, "subject_keys", None)
    return keys.table_calls() if isinstance(keys, TimedSubjectKeys) else 0


def subject_keys_port(codec: object) -> SubjectKeys | None:
    """The subject keys a pipeline gets from this codec (None: the department key only)."""
    keys = getattr(codec, "subject_keys", None)
    return keys.port() if isinstance(keys, TimedSubjectKeys) else None


def reset_timers(codec: TimedEncryptor | TimedDecryptor) -> None:
    """The measured window begins: the crypto timer and the subject keys' timer start from zero."""
    codec.timer.reset()
    if codec.subject_keys is not None:
        codec.subject_keys.timer.reset()


def subject_key_seconds(codec: TimedEncryptor | TimedDecryptor) -> float:
    """Time in the subject keys' calls (summed over threads) since the last reset."""
    return codec.subject_keys.timer.seconds if codec.subject_keys is not None else 0.0


class TimedEncryptor:
    def __init__(self, inner: Encryptor, *, subject_keys: TimedSubjectKeys | None = None) -> None:
        self.inner = inner
        self.timer = CallTimer()
        self.observer = getattr(inner, "observer", None)
        self.subject_keys = subject_keys

    def encrypt(self, binding: Binding, plaintext: bytes) -> Encrypted:
        return self.timer.timed(lambda: self.inner.encrypt(binding, plaintext))

    def encrypt_cached(self, binding: Binding, plaintext: bytes) -> Encrypted | None:
        return self.timer.timed(lambda: self.inner.encrypt_cached(binding, plaintext))


class TimedDecryptor:
    def __init__(self, inner: Decryptor, *, subject_keys: TimedSubjectKeys | None = None) -> None:
        self.inner = inner
        self.timer = CallTimer()
        self.observer = getattr(inner, "observer", None)
        self.content = inner.content
        self.subject_keys = subject_keys

    def key_arns(self, ciphertext: bytes) -> tuple[str, ...]:
        return self.inner.key_arns(ciphertext)

    def decrypt(self, ciphertext: bytes, binding: Binding) -> Decrypted:
        return self.timer.timed(lambda: self.inner.decrypt(ciphertext, binding))

    def decrypt_cached(self, ciphertext: bytes, binding: Binding) -> Decrypted | None:
        return self.timer.timed(lambda: self.inner.decrypt_cached(ciphertext, binding))
