"""The state table, written once per batch instead of once per record.

A Faust table write is a changelog record: about 200 µs each here, and a record costs two (its event id and
its partition's slot). ``WriteBehindTable`` keeps a batch's writes in memory, where the pipeline reads them
back (so the next record of the batch sees the position and state the previous one left), and ``apply``
writes each key's last value to the table once, after the batch's audit records are acknowledged.

Why nothing is lost or counted twice: the position, the handler state and the outcome counts of a partition
are one value (the slot), so a batch that never reaches the table (a crash, a rebalance, ``discard``) leaves
its partition exactly as before the batch, and its records are read again from the stored position. Writes
are applied in the order of their last change, so a partition's event ids always precede the slot that
covers them (the dedupe window's ordering rule, ``keyfan.consumer.dedupe``).

Faust sends a table change to the changelog partition of the *current event*: the record being processed
when the change was made. A deferred write must keep that partition (the slot and the event ids of source
partition p live in changelog partition p, which is what a worker assigned p restores), so each write
remembers the event current when it was made and is applied with that event current again
(``faust_fixes.current_event_as``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

from faust.streams import current_event
from faust.types import EventT

from keyfan.consumer.faust_fixes import current_event_as

_DELETED = object()


class WriteBehindTable(MutableMapping[str, Any]):
    """A Faust table seen through the current batch's pending writes. Not thread-safe: one agent owns it."""

    def __init__(
        self,
        table: MutableMapping[str, Any],
        *,
        event: Callable[[], EventT | None] = current_event,
    ) -> None:
        self.table = table
        self._event = event
        self._pending: dict[str, tuple[Any, EventT | None]] = {}

    # -- reads: the batch's writes first -------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        pending = self._pending.get(key)
        if pending is None:
            return self.table[key]
        if pending[0] is _DELETED:
            raise KeyError(key)
        return pending[0]

    def __iter__(self) -> Iterator[str]:
        for key in self.table:
            if key not in self._pending:
                yield key
        for key, (value, _) in list(self._pending.items()):
            if value is not _DELETED:
                yield key

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, key: object) -> bool:
        pending = self._pending.get(key) if isinstance(key, str) else None
        if pending is not None:
            return pending[0] is not _DELETED
        return key in self.table

    # -- writes: kept until ``apply`` ----------------------------------------------------------
    def __setitem__(self, key: str, value: Any) -> None:
        self._pending.pop(key, None)  # re-inserted last: applied in the order of last change
        self._pending[key] = (value, self._event())

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self._pending.pop(key, None)
        self._pending[key] = (_DELETED, self._event())

    @property
    def pending(self) -> int:
        """Keys changed since the last ``apply`` or ``discard``."""
        return len(self._pending)

    def apply(self) -> None:
        """Write every pending change to the table, each under the event that was current when it was made."""
        pending, self._pending = self._pending, {}
        for key, (value, event) in pending.items():
            with current_event_as(event):
                if value is _DELETED:
                    self.table.pop(key, None)
                else:
                    self.table[key] = value

    def discard(self) -> None:
        """Forget the batch: the table still holds the state before it, and its records are read again."""
        self._pending.clear()
