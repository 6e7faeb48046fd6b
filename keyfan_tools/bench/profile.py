"""Where the time goes: cProfile over each path, across the event loop *and* the worker threads.

cProfile only sees the thread that enabled it, and the pipelines run the Encryption SDK and boto3 in worker
threads (``asyncio.to_thread``). So the event-loop thread gets one profile for the whole path, and the
codec's calls are wrapped so that each worker thread profiles them too; the profiles are merged. Times are
wall-clock per thread: a thread waiting for the GIL or a socket counts that wait as its own time.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from keyfan.crypto.ports import Decrypted, Decryptor, Encrypted, Encryptor
from keyfan.envelope import Binding
from keyfan_tools.bench.context import BenchContext, Codec, Suite
from keyfan_tools.bench.paths.broker import fresh_topic
from keyfan_tools.bench.paths.consumer import READER, records_of, run_reader_path
from keyfan_tools.bench.paths.owner import run_owner_path
from keyfan_tools.bench.payloads import sized_events
from keyfan_tools.bench.samples import CONSUMER, OWNER_PIPELINE, ProfileEntry, ProfileSummary
from keyfan_tools.bench.timing import TimedDecryptor, TimedEncryptor

_REPO = str(Path(__file__).resolve().parents[2]) + "/"
_STDLIB = str(Path(os.__file__).parent) + "/"
P = ParamSpec("P")
T = TypeVar("T")

# First match wins: (group, substrings of "file:function").
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("event loop idle (epoll)", ("select.epoll", "'poll' of")),
    ("thread waits (locks, GIL handoff)", ("lock' objects", "acquire", "threading.py")),
    (
        "crypto (Encryption SDK, cryptography)",
        (
            "aws_encryption_sdk",
            "cryptography",
            "hazmat",
            "openssl",
            "_rust",
            "AESGCM",
            "hmac",
            "urandom",
            "load_der",
            "_hashlib",
        ),
    ),
    ("sockets (Kafka and AWS)", ("_socket.socket", "socket.py", "ssl")),
    ("AWS SDK (botocore, boto3, urllib3)", ("botocore", "boto3", "urllib3", "http/client")),
    ("Kafka client (aiokafka)", ("aiokafka", "kafka")),
    ("validation and JSON (pydantic, json)", ("pydantic", "json", "decimal")),
    (
        "keyfan pipelines and handler",
        ("keyfan/", "keyfan_tools/bench/", "sales_consumer", "finance_consumer"),
    ),
    ("metrics and logging", ("prometheus", "logging", "aws_lambda_powertools")),
    ("asyncio and executor", ("asyncio", "concurrent/futures", "_queue", "contextvars")),
)


class ThreadProfiler:
    """One ``cProfile.Profile`` per thread, created on first use; ``stats`` merges them all."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._profiles: list[cProfile.Profile] = []
        self._main: cProfile.Profile | None = None
        self.active = False

    def start(self) -> None:
        """Measured window begins (called on the event-loop thread)."""
        self._main = self._profile()
        self.active = True
        self._main.enable()

    def stop(self) -> None:
        if self._main is not None and self.active:
            self._main.disable()
        self.active = False

    def _profile(self) -> cProfile.Profile:
        profile = getattr(self._local, "profile", None)
        if profile is None:
            profile = cProfile.Profile()
            self._local.profile = profile
            with self._lock:
                self._profiles.append(profile)
        return profile

    def wrap(self, fn: Callable[P, T]) -> Callable[P, T]:
        def profiled(*args: P.args, **kwargs: P.kwargs) -> T:
            if not self.active:
                return fn(*args, **kwargs)
            profile = self._profile()
            profile.enable()
            try:
                return fn(*args, **kwargs)
            finally:
                profile.disable()

        return profiled

    def stats(self) -> pstats.Stats:
        with self._lock:
            profiles = list(self._profiles)
        stats = pstats.Stats(profiles[0])
        for profile in profiles[1:]:
            stats.add(profile)
        return stats


class ProfiledEncryptor:
    def __init__(self, inner: Encryptor, profiler: ThreadProfiler) -> None:
        self.inner = inner
        self.observer = getattr(inner, "observer", None)
        self._encrypt = profiler.wrap(inner.encrypt)
        self._encrypt_cached = profiler.wrap(inner.encrypt_cached)

    def encrypt(self, binding: Binding, plaintext: bytes) -> Encrypted:
        return self._encrypt(binding, plaintext)

    def encrypt_cached(self, binding: Binding, plaintext: bytes) -> Encrypted | None:
        return self._encrypt_cached(binding, plaintext)


class ProfiledDecryptor:
    def __init__(self, inner: Decryptor, profiler: ThreadProfiler) -> None:
        self.inner = inner
        self.observer = getattr(inner, "observer", None)
        self.content = inner.content
        self._decrypt = profiler.wrap(inner.decrypt)
        self._decrypt_cached = profiler.wrap(inner.decrypt_cached)

    def key_arns(self, ciphertext: bytes) -> tuple[str, ...]:
        return self.inner.key_arns(ciphertext)

    def decrypt(self, ciphertext: bytes, binding: Binding) -> Decrypted:
        return self._decrypt(ciphertext, binding)

    def decrypt_cached(self, ciphertext: bytes, binding: Binding) -> Decrypted | None:
        return self._decrypt_cached(ciphertext, binding)


def _name(key: tuple[str, int, str]) -> str:
    filename, line, function = key
    if filename == "~":
        return function
    if "site-packages/" in filename:
        filename = filename.split("site-packages/", 1)[1]
    elif filename.startswith(_REPO):
        filename = filename[len(_REPO) :]
    elif filename.startswith(_STDLIB):
        filename = filename[len(_STDLIB) :]
    return f"{filename}:{line}({function})"


def group_of(name: str) -> str:
    for group, needles in GROUPS:
        if any(needle in name for needle in needles):
            return group
    return "other"


def summarize_stats(
    stats: pstats.Stats, top: int = 15
) -> tuple[list[ProfileEntry], list[ProfileEntry], dict[str, float], float]:
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    entries = [
        ProfileEntry(
            function=_name(key), calls=int(value[1]), tottime_s=float(value[2]), cumtime_s=float(value[3])
        )
        for key, value in raw.items()
    ]
    total = sum(e.tottime_s for e in entries)
    groups: dict[str, float] = {}
    for entry in entries:
        group = group_of(entry.function)
        groups[group] = groups.get(group, 0.0) + entry.tottime_s
    shares = {g: s / total for g, s in sorted(groups.items(), key=lambda item: -item[1])} if total else {}
    by_own = sorted(entries, key=lambda e: -e.tottime_s)[:top]
    by_cum = sorted(entries, key=lambda e: -e.cumtime_s)[:top]
    return by_own, by_cum, shares, total


async def profile_paths(
    ctx: BenchContext,
    records: int,
    suite: Suite,
    size: int,
    codecs: tuple[Codec, ...] = ("encrypted", "plaintext"),
) -> list[ProfileSummary]:
    """Profile the owner pipeline and the consumer, for each codec, at one suite and size."""
    found = []
    for codec in codecs:
        name = f"keyfan.bench.profile.{codec}.{uuid.uuid4().hex[:6]}"
        departments = ctx.registry.names
        warm = sized_events(10, departments, size, 31)
        events = sized_events(records, departments, size, 32)
        async with fresh_topic(ctx.bootstrap_servers, name, ctx.registry.partition_count) as topic:
            profiler = ThreadProfiler()
            built = ctx.owner_codec(codec, suite)  # the field-level suite: its subject keys, not profiled
            encryptor = TimedEncryptor(
                ProfiledEncryptor(built.inner, profiler), subject_keys=built.subject_keys
            )
            # The owner pipeline with the profiled codec; the event loop is profiled in the measured window.
            owner = await run_owner_path(ctx, encryptor, topic, events, warm, via_sqs=False, hooks=profiler)
            found.append(_summary(OWNER_PIPELINE, codec, suite, size, owner.records, owner.seconds, profiler))
            profiler = ThreadProfiler()
            opened = ctx.consumer_codec(READER, codec, suite)
            decryptor = TimedDecryptor(
                ProfiledDecryptor(opened.inner, profiler), subject_keys=opened.subject_keys
            )
            consumer = await run_reader_path(
                ctx,
                decryptor,
                topic,
                source=READER,
                expected=records_of(READER, [*warm, *events]),
                warmup=records_of(READER, warm),
                hooks=profiler,
            )
            found.append(_summary(CONSUMER, codec, suite, size, consumer.records, consumer.seconds, profiler))
    return found


def _summary(
    path: str, codec: str, suite: str, size: int, records: int, seconds: float, profiler: ThreadProfiler
) -> ProfileSummary:
    by_own, by_cum, groups, total = summarize_stats(profiler.stats())
    return ProfileSummary(
        path=path,
        codec=codec,
        suite=suite,
        size=size,
        records=records,
        wall_seconds=seconds,
        profiled_seconds=total,
        top_own=by_own,
        top_cumulative=by_cum,
        groups=groups,
    )
