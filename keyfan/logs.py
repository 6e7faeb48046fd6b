"""One JSON log setup for every Keyfan process (Lambda, owner, consumers, CLI).

The formatter is Powertools' ``LambdaPowertoolsFormatter`` on a standard logging handler, so a service's
logs look like the generator Lambda's. Extra fields go in ``extra=``; callers never pass payload values.
Faust's worker configures logging itself, so the same setup is also offered as a ``dictConfig`` mapping
(``logging_config``) that the worker applies instead of its own.
"""

from __future__ import annotations

import logging
import logging.config
from typing import Any

# Libraries whose default verbosity drowns the service's own lines, and the level they are held at.
# The Encryption SDK logs a full exception on every failed decrypt: Keyfan classifies and logs those itself.
QUIET_LOGGERS: dict[str, str] = {
    "aws_encryption_sdk": "CRITICAL",
    "botocore": "WARNING",
    "boto3": "WARNING",
    "urllib3": "WARNING",
    "aiokafka": "WARNING",
    "faust": "WARNING",
    "mode": "WARNING",
}


def logging_config(service: str, level: str = "INFO", *, stream: str = "ext://sys.stdout") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` mapping: JSON lines on ``stream``, noisy libraries quietened."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {
                "()": "aws_lambda_powertools.logging.formatter.LambdaPowertoolsFormatter",
                "service": service,
                "name": "%(name)s",
                "utc": True,
                "use_rfc3339": True,
            }
        },
        "handlers": {
            "json": {"class": "logging.StreamHandler", "formatter": "json", "stream": stream},
        },
        "root": {"level": level.upper(), "handlers": ["json"]},
        "loggers": {name: {"level": quiet} for name, quiet in QUIET_LOGGERS.items()},
    }


def configure_logging(service: str, level: str = "INFO", *, stream: str = "ext://sys.stdout") -> None:
    """Replace the root handlers with one JSON handler for ``service``."""
    logging.root.handlers.clear()
    logging.config.dictConfig(logging_config(service, level, stream=stream))
