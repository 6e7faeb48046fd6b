"""Structured log lines: an event name plus metadata fields, never a payload value.

Fields go both into the message (``event k=v ...``, readable with any formatter) and into
``record.keyfan`` (for a JSON formatter such as ``keyfan.logs``'s). Callers pass metadata and masked
hints only; this module cannot tell plaintext from metadata, so the rule is the callers'.
"""

from __future__ import annotations

import logging


def log_event(logger: logging.Logger, level: int, event: str, **fields: object) -> None:
    if not logger.isEnabledFor(level):
        return
    shown = {k: v for k, v in fields.items() if v is not None}
    text = " ".join(f"{k}={v}" for k, v in shown.items())
    logger.log(level, "%s %s", event, text, extra={"event": event, "keyfan": shown})
