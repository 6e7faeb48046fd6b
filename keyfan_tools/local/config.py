"""Which stack a handle means and what it deploys: state dir, registry, templates, region, name prefix.

``LocalStack`` resolves these once; the job modules (``lifecycle``, ``provision``, ``sessions``) take them as
one ``StackConfig``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keyfan.departments import DepartmentRegistry
from keyfan_tools.local.state import DEFAULT_STATE_DIR, STATE_DIR_ENV, StackState, Topics


def default_state_dir(environ: dict[str, str] | None = None) -> Path:
    """``KEYFAN_STATE_DIR`` or ``./.keyfan``; read by entrypoints only."""
    env = os.environ if environ is None else environ
    return Path(env.get(STATE_DIR_ENV) or DEFAULT_STATE_DIR).resolve()


def _repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def default_iac_dir() -> Path:
    local = Path.cwd() / "iac"
    return local if local.is_dir() else _repo_root() / "iac"


@dataclass(frozen=True)
class StackConfig:
    state_dir: Path
    departments_file: Path
    iac_dir: Path
    region: str
    name_prefix: str

    def registry(self) -> DepartmentRegistry:
        return DepartmentRegistry.load(self.departments_file)

    def new_state(self, registry: DepartmentRegistry, **servers: Any) -> StackState:
        """A fresh record of this stack, before provisioning; ``servers`` say where moto and the broker are."""
        return StackState(
            region=self.region,
            name_prefix=self.name_prefix,
            departments_file=self.departments_file,
            topics=Topics(partitions=registry.partition_count),
            **servers,
        )
