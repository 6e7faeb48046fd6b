"""The retry policy both sides share: exponential backoff with bounds, optionally jittered.

The owner retries an SQS message with jitter (many pollers must not wake together); a consumer retries
one record in place without it. Outages are retried without a count limit unless ``max_attempts`` says
otherwise; something unexpected (a bug, not an outage) only ``max_unexpected_attempts`` times in all,
then the message or record is dead-lettered with reason ``unexpected_<ExceptionType>``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    initial_seconds: float = 0.2
    max_seconds: float = 5.0
    # Tries in all of something that raised unexpectedly before it is dead-lettered.
    max_unexpected_attempts: int = 3
    # None: retry outages until they succeed or the service stops.
    max_attempts: int | None = None
    # On: each delay is drawn between half and all of its exponential ceiling.
    jitter: bool = False

    def delay(self, attempt: int) -> float:
        """The wait before the ``attempt``-th retry (1-based): doubling from ``initial_seconds`` up to
        ``max_seconds``."""
        ceiling = float(min(self.max_seconds, self.initial_seconds * 2 ** max(0, attempt - 1)))
        if not self.jitter:
            return ceiling
        return ceiling * (0.5 + random.random() / 2)
