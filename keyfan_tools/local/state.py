"""What the local stack remembers between commands: processes, identities, provisioned resources.

Saved as ``state.json`` in the state directory (mode 600: it holds the runner's keys, which only let one
assume the keyfan roles). The admin's keys live apart in ``admin.json`` so that nothing that renders the
state (``status``, ``env``) can leak them by accident.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from keyfan.exceptions import LocalStackError

DEFAULT_STATE_DIR = Path(".keyfan")
STATE_DIR_ENV = "KEYFAN_STATE_DIR"
STATE_FILE = "state.json"
ADMIN_FILE = "admin.json"
LOCK_FILE = "lock"


class ProcessInfo(BaseModel):
    """One background process: enough to find it again and to prove it is still the one we started."""

    model_config = ConfigDict(frozen=True)

    name: str
    pid: int
    port: int
    argv: list[str]
    log: Path
    started_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class AccessKey(BaseModel):
    """An IAM user's long-lived key pair (local users only)."""

    model_config = ConfigDict(frozen=True)

    user_arn: str
    access_key_id: str
    secret_access_key: SecretStr


class DepartmentResources(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    partitions: tuple[int, ...]
    key_arn: str
    key_alias: str
    role_arn: str
    stack_name: str


class PlatformResources(BaseModel):
    model_config = ConfigDict(frozen=True)

    stack_name: str
    queue_url: str
    queue_arn: str
    dlq_url: str
    dlq_arn: str
    owner_role_arn: str
    owner_role_name: str
    generator_role_arn: str
    # Empty only in a state saved before the table existed: it still loads (so `down` can stop that stack),
    # and the next `keyfan local provision` fills it in.
    subject_key_table: str = ""


class Topics(BaseModel):
    model_config = ConfigDict(frozen=True)

    events: str = "keyfan.events"
    audit: str = "keyfan.audit"
    dlq: str = "keyfan.dlq"
    partitions: int = 1


class StackState(BaseModel):
    """Everything ``status``, ``env`` and the e2e fixture need, without asking the servers."""

    model_config = ConfigDict(frozen=True)

    version: int = 1
    region: str
    account_id: str = "123456789012"
    name_prefix: str = "keyfan"
    departments_file: Path
    moto: ProcessInfo | None = None
    broker: ProcessInfo | None = None
    # Set when the stack was attached to servers it did not start (docker-compose's moto and Kafka).
    external_endpoint_url: str | None = None
    external_bootstrap_servers: str | None = None
    runner: AccessKey | None = None
    admin_arn: str | None = None
    platform: PlatformResources | None = None
    departments: dict[str, DepartmentResources] = Field(default_factory=dict)
    topics: Topics = Field(default_factory=Topics)
    provisioned_at: datetime | None = None

    @property
    def endpoint_url(self) -> str | None:
        if self.external_endpoint_url:
            return self.external_endpoint_url
        return f"http://127.0.0.1:{self.moto.port}" if self.moto else None

    @property
    def bootstrap_servers(self) -> str | None:
        if self.external_bootstrap_servers:
            return self.external_bootstrap_servers
        return f"127.0.0.1:{self.broker.port}" if self.broker else None

    def processes(self) -> list[ProcessInfo]:
        return [p for p in (self.moto, self.broker) if p is not None]


def _write_private(path: Path, text: str) -> None:
    """Write atomically with mode 600 from the start (never world-readable, not even for a moment)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def save_state(state_dir: Path, state: StackState) -> None:
    data = json.loads(state.model_dump_json())
    if state.runner is not None:
        data["runner"]["secret_access_key"] = state.runner.secret_access_key.get_secret_value()
    _write_private(state_dir / STATE_FILE, json.dumps(data, indent=2, sort_keys=True) + "\n")


def load_state(state_dir: Path) -> StackState | None:
    path = state_dir / STATE_FILE
    try:
        return StackState.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (ValidationError, ValueError) as exc:
        raise LocalStackError(
            f"unreadable local stack state {path}: {exc}; remove the file and retry"
        ) from exc


def require_state(state_dir: Path) -> StackState:
    state = load_state(state_dir)
    if state is None:
        raise LocalStackError(f"no local stack in {state_dir} (run `keyfan local up`)")
    return state


@contextmanager
def locked(state_dir: Path) -> Iterator[None]:
    """Two `up`s racing (two terminals, two test sessions on one dir) must not start two stacks."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / LOCK_FILE, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def clear_state(state_dir: Path) -> None:
    for name in (STATE_FILE, ADMIN_FILE):
        (state_dir / name).unlink(missing_ok=True)


def save_admin(state_dir: Path, admin: AccessKey) -> None:
    data = json.loads(admin.model_dump_json())
    data["secret_access_key"] = admin.secret_access_key.get_secret_value()
    _write_private(state_dir / ADMIN_FILE, json.dumps(data, indent=2) + "\n")


def load_admin(state_dir: Path) -> AccessKey:
    path = state_dir / ADMIN_FILE
    try:
        return AccessKey.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LocalStackError(f"no admin credentials at {path}: is the local stack up?") from None
