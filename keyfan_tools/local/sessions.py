"""boto3 sessions on the stack's moto server, built without touching ``os.environ``.

Every session reads a private AWS config file in the state dir (region, ``endpoint_url``). Three kinds:

* the admin's (``admin_session``): ground truth for tests and provisioning, may do anything; never handed to a
  service;
* a service identity's (``identity_session``): the runner's keys, then AssumeRole, as ECS hands a task its role;
* a throwaway one (``unauthenticated_client``), used only while moto's auth is still off.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import boto3
import botocore.session

from keyfan.aws import session_for
from keyfan.exceptions import LocalStackError
from keyfan.settings import KeyfanSettings
from keyfan_tools.local.config import StackConfig
from keyfan_tools.local.environment import role_arn_for
from keyfan_tools.local.state import AccessKey, StackState, load_admin

AWS_CONFIG_FILE = "aws-config"


def write_aws_config(state_dir: Path, state: StackState) -> None:
    """A private AWS config file so the stack's own sessions reach moto without touching os.environ."""
    text = f"[default]\nregion = {state.region}\nendpoint_url = {state.endpoint_url}\n"
    (state_dir / AWS_CONFIG_FILE).write_text(text, encoding="utf-8")


def remove_aws_config(state_dir: Path) -> None:
    (state_dir / AWS_CONFIG_FILE).unlink(missing_ok=True)


def _botocore_session(
    state_dir: Path, region: str, access_key_id: str, secret_access_key: str
) -> botocore.session.Session:
    core = botocore.session.Session()
    core.set_config_variable("config_file", str(state_dir / AWS_CONFIG_FILE))
    core.set_config_variable("profile", "default")
    core.set_config_variable("region", region)
    core.set_credentials(access_key_id, secret_access_key)
    return core


def _user_session(config: StackConfig, key: AccessKey) -> botocore.session.Session:
    return _botocore_session(
        config.state_dir, config.region, key.access_key_id, key.secret_access_key.get_secret_value()
    )


def admin_session(config: StackConfig) -> boto3.Session:
    """Ground truth for tests and provisioning: may do anything. Never hand it to a service."""
    admin = load_admin(config.state_dir)
    return boto3.Session(botocore_session=_user_session(config, admin), region_name=config.region)


def identity_session(config: StackConfig, state: StackState, identity: str) -> boto3.Session:
    """A session as a service of that identity would hold it: the runner's keys, then AssumeRole."""
    if state.runner is None:
        raise LocalStackError("the local stack has no runner identity")
    base = _user_session(config, state.runner)
    role = role_arn_for(state, identity)
    if role is None:
        return boto3.Session(botocore_session=base, region_name=state.region)
    settings = KeyfanSettings.model_validate({"role_arn": role, "AWS_REGION": state.region})
    return session_for(settings, base=base, session_name=f"keyfan-local-{identity}")


def unauthenticated_client(state_dir: Path, state: StackState, service: str) -> Any:
    """Used only before auth is on: moto accepts any well-formed keys then; these are throwaway."""
    key_id, secret = "AKIA" + os.urandom(8).hex().upper(), os.urandom(20).hex()
    return _botocore_session(state_dir, state.region, key_id, secret).create_client(
        service, region_name=state.region
    )
