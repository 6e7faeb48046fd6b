"""``python -m owner_service``: run one owner worker from environment settings (``KEYFAN_*``)."""

from __future__ import annotations

import os

from pydantic import ValidationError

from keyfan.logs import configure_logging, logging_config
from keyfan.settings import OwnerSettings
from keyfan.worker import run_worker
from owner_service.app import create_app

SERVICE = "keyfan-owner"


def main() -> None:
    level = os.environ.get("KEYFAN_LOG_LEVEL", "INFO")
    configure_logging(SERVICE, level)
    try:
        settings = OwnerSettings()  # type: ignore[call-arg]  # required fields come from the environment
    except ValidationError as exc:
        missing = ", ".join(f"KEYFAN_{'.'.join(map(str, e['loc'])).upper()}" for e in exc.errors())
        raise SystemExit(f"owner_service: missing or invalid settings: {missing}") from None
    run_worker(
        create_app(settings),
        data_dir=settings.data_dir,
        loglevel=level,
        logging_config=logging_config(SERVICE, level),
    )


if __name__ == "__main__":
    main()
