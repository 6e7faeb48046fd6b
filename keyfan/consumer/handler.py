"""The seam between the framework and a department: a ``DomainHandler``.

A handler is pure: given the state of one source partition and one decrypted, checked payload, it returns
the new state. The framework owns everything else (decryption, outcomes, audit, DLQ, dedupe, storage in a
Faust Table), so a new department's consumer is one handler plus configuration.

State is JSON-friendly (str keys, amounts as decimal strings) because it is stored in a Faust Table
whose changelog is JSON.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from keyfan.envelope import RecordMetadata

State = dict[str, Any]


class DomainHandler(Protocol):
    """What a department's consumer implements."""

    department: str

    def initial_state(self) -> State:
        """The state of a partition nothing has been applied to yet."""
        ...

    def apply(self, state: State, metadata: RecordMetadata, data: Mapping[str, Any]) -> State:
        """Fold one decrypted payload into a partition's state; return the new state.

        Must not mutate ``state`` (the old value may still be referenced by the table). Raise
        ``InvalidEvent`` for a payload that does not fit the contract: it is dead-lettered.
        """
        ...

    def merge(self, states: Iterable[State]) -> State:
        """Combine per-partition states into the department's aggregates (for ``/state``)."""
        ...

    def hint(self, metadata: RecordMetadata, data: Mapping[str, Any]) -> Mapping[str, str]:
        """Masked values a person may see in a DEBUG log line (``keyfan.masking``); never plaintext."""
        ...
