"""Structured log lines: an event name plus metadata fields, never a payload value.

Fields go in ``extra=`` (flat), which ``keyfan.logs``'s JSON formatter renders as top-level keys, the
same way the owner service logs. Callers pass metadata and masked hints only; this module cannot tell
plaintext from metadata, so that rule is the callers'.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keyfan.consumer.outcomes import Classification
    from keyfan.consumer.records import RawRecord
    from keyfan.envelope import RecordMetadata


def log_event(logger: logging.Logger, level: int, event: str, **fields: object) -> None:
    if not logger.isEnabledFor(level):
        return
    shown = {k: v for k, v in fields.items() if v is not None}
    logger.log(level, event, extra={"event": event, **shown})


def outcome_fields(
    department: str,
    record: RawRecord,
    metadata: RecordMetadata | None,
    key_arn: str | None,
    verdict: Classification,
) -> dict[str, object]:
    """What a log line says about a record's outcome: metadata only."""
    return {
        "department": department,
        "record_department": metadata.department if metadata else None,
        "event_id": metadata.event_id if metadata else None,
        "partition": record.partition,
        "offset": record.offset,
        "key_arn": key_arn,
        "reason": verdict.reason,
    }
