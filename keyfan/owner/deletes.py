"""Delete batching: concurrent SQS deletes coalesced into ``DeleteMessageBatch`` calls."""

from __future__ import annotations

import asyncio

from keyfan.exceptions import QueueUnavailable
from keyfan.owner.ports import WorkQueue
from keyfan.sqs import QueueMessage


class DeleteBatcher:
    """Coalesces concurrent deletes into ``DeleteMessageBatch`` calls (up to 10, or what arrived within
    ``linger_seconds``): one SQS request per batch instead of one per message. Each caller still awaits
    its own message's result, so "delete only after the broker's ack" holds per message.
    """

    def __init__(self, queue: WorkQueue, *, linger_seconds: float = 0.01, max_batch: int = 10) -> None:
        self._queue = queue
        self._linger = linger_seconds
        self._max = max_batch
        self._pending: list[tuple[QueueMessage, asyncio.Future[None]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._sending: set[asyncio.Task[None]] = set()

    async def delete(self, message: QueueMessage) -> None:
        """Returns once SQS deleted ``message``; raises ``QueueUnavailable`` if it did not."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._pending.append((message, future))
        if len(self._pending) >= self._max:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self._linger, self._flush)
        await future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._pending:
            batch, self._pending = self._pending[: self._max], self._pending[self._max :]
            task = asyncio.ensure_future(self._send(batch))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[tuple[QueueMessage, asyncio.Future[None]]]) -> None:
        try:
            failed = await asyncio.to_thread(self._queue.delete_batch, [message for message, _ in batch])
        except Exception as exc:  # QueueUnavailable, or a bug: every waiting caller gets it, none hangs
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for message, future in batch:
            if future.done():
                continue
            if message.message_id in failed:
                future.set_exception(QueueUnavailable(f"delete refused: {failed[message.message_id]}"))
            else:
                future.set_result(None)
