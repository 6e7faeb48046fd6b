"""The seam between the framework and a department: a ``DomainHandler``.

A handler is pure: given the state of one source partition and one decrypted, checked payload, it returns
the new state. The framework owns everything else (decryption, outcomes, audit, DLQ, dedupe, storage in a
Faust Table), so a new department's consumer is one handler plus configuration.

State is JSON-friendly (str keys, amounts as decimal strings) because it is stored in a Faust Table
whose changelog is JSON.

Two helpers every handler wants: ``count_foreign`` (a readable record of another department is counted,
not aggregated) and ``parse_payload`` (the contract's validation errors as ``InvalidEvent``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from keyfan.envelope import RecordMetadata
from keyfan.exceptions import InvalidEvent
from keyfan.personal_data import readable_model

State = dict[str, Any]
FOREIGN_EVENTS = "foreign_events"
Payload = TypeVar("Payload", bound=BaseModel)


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


def count_foreign(state: State, department: str) -> State:
    """A record of another department that IAM let this consumer read: not ours to aggregate, so it is
    only counted, in ``state["foreign_events"]`` by its department. Returns a new state."""
    foreign = dict(state[FOREIGN_EVENTS])
    foreign[department] = foreign.get(department, 0) + 1
    return {**state, FOREIGN_EVENTS: foreign}


def parse_payload(model: type[Payload], data: Mapping[str, Any], what: str) -> Payload:
    """``data`` as the department's payload ``model``; ``InvalidEvent("invalid_payload")`` if it breaks
    the contract. Personal fields that arrive shredded or withheld hold their marker strings instead. Only the failing fields' locations reach the message, never their values."""
    try:
        return readable_model(model, data).model_validate(data)
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()})
        raise InvalidEvent("invalid_payload", f"{what} fails the contract at {fields}") from None
