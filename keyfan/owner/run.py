"""The entrypoint behind ``python -m owner_service``.

Settings come from the environment (``KEYFAN_*``, see ``keyfan.settings``); ``KEYFAN_LOG_LEVEL`` sets
the log level (INFO by default).
"""

from __future__ import annotations

from pydantic import ValidationError

from keyfan.logs import configure_logging, logging_config
from keyfan.owner.app import create_owner_app
from keyfan.settings import OwnerSettings
from keyfan.worker import run_worker

SERVICE = "keyfan-owner"


def load_settings() -> OwnerSettings:
    """Read ``OwnerSettings`` from the environment; exits naming the variables that are missing or bad."""
    try:
        return OwnerSettings()  # type: ignore[call-arg]  # required fields come from the environment
    except ValidationError as exc:
        missing = ", ".join(f"KEYFAN_{'.'.join(map(str, e['loc'])).upper()}" for e in exc.errors())
        raise SystemExit(f"owner_service: missing or invalid settings: {missing}") from None


def run_owner(settings: OwnerSettings, loglevel: str = "INFO") -> None:
    """Start the owner's Faust worker and block until it stops (SIGTERM/SIGINT)."""
    run_worker(
        create_owner_app(settings),
        data_dir=settings.data_dir,
        loglevel=loglevel,
        logging_config=logging_config(SERVICE, loglevel),
    )


def main() -> None:
    settings = load_settings()
    configure_logging(SERVICE, settings.log_level)
    run_owner(settings, settings.log_level)
