"""Pure classification: what happened to one record, from the exception (or result) of processing it.

Five outcomes, and a record ends in exactly one of the four final ones::

    decrypted       the payload was opened, checked and applied by the domain handler
    duplicate       opened and checked, but its event id was already applied from another offset
    access_denied   KMS/IAM refused this consumer's identity: final for it; commit and skip
    dead_letter     the bytes, headers or payload are bad (corrupt, tampered, invalid, misrouted), or
                    processing failed unexpectedly more than a bounded number of times: DLQ, commit
    retry           KMS (or the broker) is unavailable: not final; retry in place, without bound

A denial and an outage must never be confused: one skips a record, the other must never skip one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from keyfan.exceptions import (
    AccessDenied,
    CorruptMessage,
    InvalidEvent,
    KeyServiceUnavailable,
    PublishFailed,
)


class Outcome(StrEnum):
    DECRYPTED = "decrypted"
    DUPLICATE = "duplicate"
    ACCESS_DENIED = "access_denied"
    DEAD_LETTER = "dead_letter"
    RETRY = "retry"

    @property
    def final(self) -> bool:
        """Whether the record may be committed after this outcome."""
        return self is not Outcome.RETRY


@dataclass(frozen=True, slots=True)
class Classification:
    outcome: Outcome
    reason: str


def classify(error: BaseException | None) -> Classification:
    """Map the error that processing one record raised (None: it succeeded) to its outcome.

    Anything unknown classifies as ``retry`` with reason ``unexpected_<Type>``: the pipeline retries it a
    bounded number of times (it may be a passing fault) and then dead-letters it with that reason.
    """
    if error is None:
        return Classification(Outcome.DECRYPTED, "ok")
    if isinstance(error, AccessDenied):
        return Classification(Outcome.ACCESS_DENIED, "kms_access_denied")
    if isinstance(error, KeyServiceUnavailable):
        return Classification(Outcome.RETRY, "kms_unavailable")
    if isinstance(error, PublishFailed):
        return Classification(Outcome.RETRY, "publish_failed")
    if isinstance(error, CorruptMessage):  # TamperedMessage included
        return Classification(Outcome.DEAD_LETTER, error.reason)
    if isinstance(error, InvalidEvent):
        return Classification(Outcome.DEAD_LETTER, error.reason)
    return Classification(Outcome.RETRY, unexpected_reason(error))


def unexpected_reason(error: BaseException) -> str:
    return f"unexpected_{type(error).__name__}"
