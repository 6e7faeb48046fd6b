"""The denial memory: which KMS keys this consumer was recently refused, so it stops asking KMS.

A denial is remembered per key ARN until ``now + ttl``; after that the next record under that key asks
KMS again. That is how an IAM grant takes effect without a restart: within one TTL. The clock is
injectable so tests need no sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Denial:
    key_arn: str
    principal: str | None
    until: float


class DenialMemory:
    """Key ARN -> denied until t + ttl. Not thread-safe: one agent task owns it."""

    def __init__(self, ttl_seconds: float, *, clock: Clock = time.monotonic) -> None:
        if ttl_seconds < 0:
            raise ValueError("ttl_seconds must be >= 0")
        self._ttl = ttl_seconds
        self._clock = clock
        self._denied: dict[str, Denial] = {}

    @property
    def ttl_seconds(self) -> float:
        return self._ttl

    def remember(self, key_arn: str, principal: str | None = None) -> Denial:
        denial = Denial(key_arn=key_arn, principal=principal, until=self._clock() + self._ttl)
        self._denied[key_arn] = denial
        return denial

    def lookup(self, key_arns: Iterable[str]) -> Denial | None:
        """A remembered denial if *every* key the message names is denied (one usable key is enough)."""
        now = self._clock()
        found: Denial | None = None
        arns = list(key_arns)
        if not arns:
            return None
        for arn in arns:
            denial = self._denied.get(arn)
            if denial is None:
                return None
            if denial.until <= now:
                del self._denied[arn]
                return None
            found = denial
        return found

    def forget(self, key_arn: str) -> None:
        self._denied.pop(key_arn, None)

    def active(self) -> tuple[str, ...]:
        """Key ARNs currently remembered as denied (expired entries dropped)."""
        now = self._clock()
        for arn in [a for a, d in self._denied.items() if d.until <= now]:
            del self._denied[arn]
        return tuple(sorted(self._denied))
