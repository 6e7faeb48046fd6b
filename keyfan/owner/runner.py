"""The owner's pollers: ``concurrency`` SQS long-poll loops feeding the pipeline, drained on stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping

from keyfan.exceptions import QueueUnavailable
from keyfan.owner.pipeline import OwnerPipeline
from keyfan.owner.ports import WorkQueue

log = logging.getLogger("keyfan.owner")


class OwnerRunner:
    """``concurrency`` long-poll loops feeding the pipeline; ``drain`` stops them and lets work finish."""

    def __init__(
        self,
        pipeline: OwnerPipeline,
        queue: WorkQueue,
        *,
        concurrency: int = 4,
        wait_seconds: int = 2,
        batch_size: int = 10,
        visibility_timeout: int | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.queue = queue
        self.concurrency = concurrency
        self.wait_seconds = wait_seconds
        self.batch_size = batch_size
        self.visibility_timeout = visibility_timeout
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.ensure_future(self.run())
        return self._task

    async def run(self) -> None:
        await asyncio.gather(*(self._poll(index) for index in range(self.concurrency)))

    async def _poll(self, index: int) -> None:
        failures = 0
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                messages = await asyncio.to_thread(
                    self.queue.receive,
                    max_messages=self.batch_size,
                    wait_seconds=self.wait_seconds,
                    visibility_timeout=self.visibility_timeout,
                )
            except QueueUnavailable as exc:
                failures += 1
                self.pipeline.metrics.poll_errors.inc()
                log.warning("SQS receive failed", extra={"poller": index, "error": str(exc)})
                await self._sleep(self.pipeline.retry.delay(failures))
                continue
            failures = 0
            self.pipeline.metrics.receive_latency.observe(time.monotonic() - started)
            if messages:
                # Received work is always finished (or released), even if a stop arrived meanwhile.
                await asyncio.gather(*(self.pipeline.handle(message) for message in messages))

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def drain(self, grace_seconds: float) -> bool:
        """Stop polling and wait up to ``grace_seconds`` for in-flight messages; True if all finished."""
        self._stopping.set()
        self.pipeline.stop()
        if self._task is None:
            return True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=grace_seconds)
        except TimeoutError:
            log.error("shutdown timed out with work in flight; SQS will redeliver it")
            return False
        return True

    def stats(self) -> Mapping[str, int]:
        return self.pipeline.metrics.snapshot()


def accounted(snapshot: Mapping[str, int]) -> bool:
    """The accounting identity holds for a metrics snapshot."""
    return snapshot["received"] == (
        snapshot["published"] + snapshot["dead_lettered"] + snapshot["released"] + snapshot["in_flight"]
    )
