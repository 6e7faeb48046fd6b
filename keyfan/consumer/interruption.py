"""Abandoning a record mid-retry when a rebalance or shutdown begins, so neither waits on an outage."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from keyfan.exceptions import Interrupted

T = TypeVar("T")


class Interruption:
    """Set by a rebalance or a shutdown; every wait of the record in progress gives way to it."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    def clear(self) -> None:
        self._event.clear()

    def check(self) -> None:
        """Raise ``Interrupted`` if set: the record is left without an outcome, to be read again."""
        if self._event.is_set():
            raise Interrupted("record abandoned for a rebalance or shutdown")

    async def race(self, work: Awaitable[T]) -> T:
        """Await ``work`` unless the interruption comes first (a blocking KMS call is then left to finish
        on its thread, its result unused)."""
        self.check()
        task = asyncio.ensure_future(work)
        stop = asyncio.ensure_future(self._event.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if not task.done():
            task.cancel()
            raise Interrupted("record abandoned for a rebalance or shutdown")
        return task.result()
