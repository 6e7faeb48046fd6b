"""Bring a stack up, attach one to servers it did not start, re-provision it, bring it down.

Start-up order: the servers on free ports, the two IAM users with auth still off, auth on, then everything else
(CloudFormation from ``iac/``, the runner's AssumeRole grant, topics) as the admin user, exactly as on AWS.
Each operation holds the state dir's lock, so two of them racing on one dir never start two stacks.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from keyfan.departments import DepartmentRegistry
from keyfan.exceptions import LocalStackError
from keyfan_tools.local import identities, motoserver, servers, sessions
from keyfan_tools.local.config import StackConfig
from keyfan_tools.local.provision import Provisioned, provision_stack
from keyfan_tools.local.state import (
    StackState,
    clear_state,
    load_state,
    locked,
    require_state,
    save_admin,
    save_state,
)
from keyfan_tools.local.status import StackStatus, stack_status


class UpResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    started: bool
    notes: list[str] = Field(default_factory=list)
    seconds: float = 0.0


def up(config: StackConfig) -> tuple[UpResult, Provisioned | None]:
    """Start and provision the stack, or report the live one. Never fatal on a taken port or a dead pid."""
    began = time.monotonic()
    with locked(config.state_dir):
        notes: list[str] = []
        recorded = load_state(config.state_dir)
        if recorded is not None:
            status = stack_status(config.state_dir, recorded)
            if status.healthy:
                return UpResult(started=False, notes=[f"already running: {status.render()}"]), None
            notes.append(_restart_note(status))
            notes += _stop_and_forget(config.state_dir, recorded)
        try:
            provisioned = _start(config, notes)
        except BaseException:
            leftover = load_state(config.state_dir)
            if leftover is not None:
                servers.stop_servers(leftover)
            _forget(config.state_dir)
            raise
    return UpResult(started=True, notes=notes, seconds=round(time.monotonic() - began, 2)), provisioned


def down(config: StackConfig) -> list[str]:
    """Stop exactly the processes this stack started; returns what was done, line by line."""
    with locked(config.state_dir):
        recorded = load_state(config.state_dir)
        if recorded is None:
            return [f"no local stack recorded in {config.state_dir}"]
        return _stop_and_forget(config.state_dir, recorded)


def reprovision(config: StackConfig) -> Provisioned:
    """Re-deploy the templates and topics of a running stack (after editing departments.toml or iac/)."""
    with locked(config.state_dir):
        state = require_state(config.state_dir)
        status = stack_status(config.state_dir, state)
        if not status.servers_healthy:
            raise LocalStackError(f"the local stack is not healthy:\n{status.render()}")
        return provision_stack(config, state)


def attach(config: StackConfig, endpoint_url: str, bootstrap_servers: str) -> Provisioned:
    """Provision servers this stack did not start (docker-compose's moto and Kafka); idempotent.

    The first call creates the identities and switches moto's auth on; later calls only re-provision.
    """
    with locked(config.state_dir):
        recorded = load_state(config.state_dir)
        if recorded is not None and recorded.provisioned_at is not None:
            return provision_stack(config, recorded)
        registry = config.registry()
        state = config.new_state(
            registry, external_endpoint_url=endpoint_url, external_bootstrap_servers=bootstrap_servers
        )
        save_state(config.state_dir, state)
        return _bootstrap(config, state, registry)


def _restart_note(status: StackStatus) -> str:
    broken = [f"{p.name} pid {p.pid}" for p in status.processes if not p.healthy]
    return f"recorded stack is unhealthy ({', '.join(broken) or 'not provisioned'}): restarting cleanly"


def _stop_and_forget(state_dir: Path, state: StackState) -> list[str]:
    notes = servers.stop_servers(state)
    _forget(state_dir)
    return notes


def _forget(state_dir: Path) -> None:
    clear_state(state_dir)
    sessions.remove_aws_config(state_dir)


def _start(config: StackConfig, notes: list[str]) -> Provisioned:
    registry = config.registry()  # fail on a bad registry before starting anything
    base_env = dict(os.environ)
    moto = servers.start_moto(config.state_dir, base_env)
    state = config.new_state(registry, moto=moto)
    save_state(config.state_dir, state)  # from here on `down` can clean up, whatever happens next
    kafka = servers.start_broker(config.state_dir, base_env)
    state = state.model_copy(update={"broker": kafka})
    save_state(config.state_dir, state)
    provisioned = _bootstrap(config, state, registry)
    notes.append(
        f"moto on 127.0.0.1:{moto.port} (pid {moto.pid}), Tansu on 127.0.0.1:{kafka.port} (pid {kafka.pid})"
    )
    return provisioned


def _bootstrap(config: StackConfig, state: StackState, registry: DepartmentRegistry) -> Provisioned:
    """Identities with auth off, then auth on for good, then the templates and topics."""
    sessions.write_aws_config(config.state_dir, state)
    iam = sessions.unauthenticated_client(config.state_dir, state, "iam")
    admin = identities.create_admin(iam, config.name_prefix)
    runner = identities.create_runner(iam, config.name_prefix)
    save_admin(config.state_dir, admin)
    account = admin.user_arn.split(":")[4]
    state = state.model_copy(update={"runner": runner, "admin_arn": admin.user_arn, "account_id": account})
    save_state(config.state_dir, state)
    motoserver.enable_auth(state.endpoint_url)
    return provision_stack(config, state, registry)
