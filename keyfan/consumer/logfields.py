"""Structured log lines: an event name plus metadata fields, never a payload value.

Fields go in ``extra=`` (flat), which ``keyfan.logs``'s JSON formatter renders as top-level keys, the
same way the owner service logs. Callers pass metadata and masked hints only; this module cannot tell
plaintext from metadata, so that rule is the callers'.
"""

from __future__ import annotations

import logging


def log_event(logger: logging.Logger, level: int, event: str, **fields: object) -> None:
    if not logger.isEnabledFor(level):
        return
    shown = {k: v for k, v in fields.items() if v is not None}
    logger.log(level, event, extra={"event": event, **shown})
